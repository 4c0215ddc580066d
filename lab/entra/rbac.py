"""Entra role assignments as Entra keeps them: active or PIM-eligible, tenant-wide or scoped to an administrative
unit, built-in or custom.

A person's fixture ``entra_roles`` are active, tenant-wide, built-in assignments. The control API adds or removes
others at run time (``POST /control/roles``), as an administrator would in the portal, and ``POST /control/reset``
puts the fixture's back. Who sees what, as in Entra:

- ``transitiveMemberOf`` lists a ``directoryRole`` only for an active, tenant-wide, built-in assignment: custom
  roles are never directoryRole objects, administrative-unit-scoped assignments are ``scopedRoleMemberOf``, and an
  eligible role is not held until it is activated.
- ``roleManagement/directory/roleAssignments`` lists every active assignment (custom and scoped ones too);
  ``roleEligibilityScheduleInstances`` lists the eligible ones.
- Entra's own role check on resetPassword and on Temporary Access Passes counts what a *target* actively holds,
  in any scope (custom roles: only Privileged Authentication and Global Administrators may act on them), and ignores
  eligible roles, as Microsoft's table does: a Helpdesk Administrator may reset someone merely eligible for Global
  Administrator. A *caller* acts with its active tenant-wide roles only (the lab puts no user in an administrative
  unit, so a scoped role never empowers anyone here: stricter than Entra, never kinder).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from lab.entra import config
from lab.people import Person

_NAMESPACE = uuid.UUID("3c5e7a91-0b2d-4f68-8e1a-6d4c2b9f0a37")
#: ``directoryScopeId`` of a tenant-wide assignment.
TENANT_SCOPE = "/"


def administrative_unit_id(name: str) -> str:
    """The object id of the lab's administrative unit called ``name`` (stable across runs)."""
    return str(uuid.uuid5(_NAMESPACE, f"au:{name}"))


def is_built_in(role: str) -> bool:
    return role in config.ROLE_TEMPLATE_IDS


def role_definition_id(role: str) -> str:
    """A built-in role's template id (its definition id in every tenant), or a custom role's own id."""
    return config.ROLE_TEMPLATE_IDS.get(role) or str(uuid.uuid5(_NAMESPACE, f"custom-role:{role}"))


@dataclass(frozen=True)
class RoleAssignment:
    """One role held (``eligible`` False) or claimable through PIM (True) by one principal, at one scope."""

    principal_id: str
    role: str
    eligible: bool = False
    scope: str = TENANT_SCOPE

    @property
    def id(self) -> str:
        kind = "eligible" if self.eligible else "active"
        return str(uuid.uuid5(_NAMESPACE, f"{kind}:{self.principal_id}:{self.role}:{self.scope}"))

    @property
    def tenant_wide(self) -> bool:
        return self.scope == TENANT_SCOPE

    def definition_json(self) -> dict[str, Any]:
        """The ``unifiedRoleDefinition`` Graph returns with ``$expand=roleDefinition``."""
        built_in = is_built_in(self.role)
        definition_id = role_definition_id(self.role)
        return {"id": definition_id, "displayName": self.role, "description": None, "isBuiltIn": built_in,
                "isEnabled": True, "templateId": definition_id, "resourceScopes": [TENANT_SCOPE], "version": "1",
                "rolePermissions": []}

    def as_graph(self, *, expand: bool) -> dict[str, Any]:
        """A ``unifiedRoleAssignment``, or for an eligible one a ``unifiedRoleEligibilityScheduleInstance``."""
        body: dict[str, Any] = {"id": self.id, "principalId": self.principal_id,
                                "roleDefinitionId": role_definition_id(self.role), "directoryScopeId": self.scope,
                                "appScopeId": None}
        if self.eligible:
            body |= {"startDateTime": "2024-01-01T00:00:00Z", "endDateTime": None, "memberType": "Direct",
                     "roleEligibilityScheduleId": self.id}
        else:
            body["resourceScope"] = self.scope
        if expand:
            body["roleDefinition"] = self.definition_json()
        return body

    def as_control(self) -> dict[str, Any]:
        return {"role": self.role, "eligible": self.eligible, "scope": self.scope, "built_in": is_built_in(self.role)}


def fixture_assignments(person: Person) -> list[RoleAssignment]:
    """What the people fixture says: each of ``entra_roles`` active, tenant-wide."""
    return [RoleAssignment(person.entra_id, role) for role in person.entra_roles]
