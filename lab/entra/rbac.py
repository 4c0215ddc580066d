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

Roles also reach people through **role-assignable groups** (:class:`RoleGroup`, ``isAssignableToRole``): the
assignment's ``principalId`` is the group, so a read filtered on the user's own id misses it, and each active member
holds (or, for an eligible assignment, may activate) the group's roles. With PIM for Groups a person may instead be
*eligible* for membership or ownership of such a group (``identityGovernance/privilegedAccess/group``): one
activation from its roles. A target's Entra check counts the active roles of the groups it is an active member of.
``transitiveMemberOf`` lists the group (``isAssignableToRole`` true) but not the group's roles as directoryRole
objects: whether Graph does is not something the bot may lean on, so the stand-in shows the stricter view.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
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


#: PIM for Groups: the two relationships a person may hold with a group (Graph's ``accessId``).
GROUP_ACCESS = ("member", "owner")


def role_group_id(name: str) -> str:
    """The object id of the lab's role-assignable group called ``name`` (stable across runs)."""
    return str(uuid.uuid5(_NAMESPACE, f"role-group:{name}"))


@dataclass
class RoleGroup:
    """A cloud-only security group with ``isAssignableToRole`` (only such a group may hold an Entra role): its
    active members and owners, who is eligible for which relationship through PIM for Groups, and the roles
    assigned to it (``RoleAssignment`` whose ``principal_id`` is the group's id). Role-assignable groups cannot
    hold groups, so membership here is never nested."""

    name: str
    members: set[str] = field(default_factory=set)  # user object ids
    owners: set[str] = field(default_factory=set)
    #: (user object id, "member" | "owner") the person may activate through PIM for Groups.
    eligible: set[tuple[str, str]] = field(default_factory=set)
    assignments: list[RoleAssignment] = field(default_factory=list)

    @property
    def id(self) -> str:
        return role_group_id(self.name)

    def as_graph(self) -> dict[str, Any]:
        return {"@odata.type": "#microsoft.graph.group", "id": self.id, "displayName": self.name,
                "description": f"resetbot lab: role-assignable group {self.name}", "groupTypes": [],
                "mailEnabled": False, "securityEnabled": True, "isAssignableToRole": True,
                "onPremisesSyncEnabled": None, "onPremisesSamAccountName": None, "onPremisesDomainName": None}

    def active(self) -> list[tuple[str, str]]:
        """(user id, access) of every active relationship, as PIM for Groups lists its assignment instances."""
        return [(u, "member") for u in sorted(self.members)] + [(u, "owner") for u in sorted(self.owners)]

    def as_control(self, upn_of: dict[str, str]) -> dict[str, Any]:
        def upns(ids: set[str] | list[str]) -> list[str]:
            return sorted(upn_of.get(i, i) for i in ids)
        return {"name": self.name, "id": self.id, "members": upns(self.members), "owners": upns(self.owners),
                "eligible_members": upns([u for u, a in self.eligible if a == "member"]),
                "eligible_owners": upns([u for u, a in self.eligible if a == "owner"]),
                "assignments": [a.as_control() for a in self.assignments]}
