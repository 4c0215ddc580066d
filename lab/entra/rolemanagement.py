"""Graph's ``roleManagement/directory``: who holds which Entra role (``roleAssignments``) and who may activate one
through PIM (``roleEligibilityScheduleInstances``), with Graph's shapes and permissions.

Microsoft Graph v1.0 documents both lists with ``$filter``, ``$expand`` and ``$select``. The stand-in answers the
``$filter`` the bot and tests need (``eq`` on ``principalId``, ``roleDefinitionId`` or ``directoryScopeId``, and
``principalId in ('…', '…')``, at most 15 values as Graph allows, joined by ``and``) and
``$expand=roleDefinition``; anything else is a 400. A role-assignable group's assignments are listed under the
group's id as ``principalId``, never under its members' (lab.entra.rbac). Both need an application permission (the
public client consents none of these scopes, so a delegated call gets the same 403 Graph gives a caller without
them). Eligibility is a PIM feature: with the ``pim_unlicensed`` fault the stand-in answers as Graph does in a
tenant without Entra ID P2 or Governance, 400 ``AadPremiumLicenseRequired``.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from lab.entra.graphbase import GraphRoutes, Refusal, caller_of
from lab.entra.rbac import RoleAssignment, role_definition_id
from lab.entra.wire import bad_request, graph_json

#: (application permissions, delegated scopes) that allow each list (Graph's permission tables for v1.0).
READ_ASSIGNMENTS = ({"RoleManagement.Read.Directory", "RoleManagement.Read.All", "Directory.Read.All",
                     "RoleManagement.ReadWrite.Directory", "Directory.ReadWrite.All"}, set[str]())
READ_ELIGIBILITY = ({"RoleEligibilitySchedule.Read.Directory", "RoleEligibilitySchedule.ReadWrite.Directory",
                     "RoleManagement.Read.All", "RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory"},
                    set[str]())

#: Graph refuses an ``in (...)`` list of more than 15 values on directory objects (400): a client with more asks
#: in turns, and one that sent them all at once would learn nothing.
MAX_IN_VALUES = 15

MSG_UNLICENSED = "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license."

_CLAUSE = re.compile(r"^\s*(principalId|roleDefinitionId|directoryScopeId)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_IN = re.compile(r"^\s*(principalId)\s+in\s+\(\s*('[^']*'(?:\s*,\s*'[^']*')*)\s*\)\s*$", re.IGNORECASE)


def _matcher(raw: str | None) -> dict[str, set[str]]:
    """The ``$filter``'s clauses as {property: accepted values}; ValueError for anything else."""
    if raw is None or not raw.strip():
        return {}
    wanted: dict[str, set[str]] = {}
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        if m := _CLAUSE.match(clause):
            wanted[m.group(1).lower()] = {m.group(2).lower()}
        elif m := _IN.match(clause):
            values = [v.strip().strip("'").lower() for v in m.group(2).split(",")]
            if len(values) > MAX_IN_VALUES:
                raise ValueError(f"{clause}: more than {MAX_IN_VALUES} values in an 'in' list")
            wanted[m.group(1).lower()] = set(values)
        else:
            raise ValueError(clause)
    return wanted


def _fields(a: RoleAssignment) -> dict[str, str]:
    return {"principalid": a.principal_id.lower(), "roledefinitionid": role_definition_id(a.role).lower(),
            "directoryscopeid": a.scope.lower()}


class RoleManagement(GraphRoutes):
    """``/v1.0/roleManagement/directory/roleAssignments`` and ``.../roleEligibilityScheduleInstances``."""

    def routes(self) -> list[web.RouteDef]:
        base = "/v1.0/roleManagement/directory"
        return [
            web.get(f"{base}/roleAssignments", self.assignments),
            web.get(f"{base}/roleEligibilityScheduleInstances", self.eligibilities),
        ]

    async def assignments(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_ASSIGNMENTS))
        return self._list(request, eligible=False, entity_set="roleManagement/directory/roleAssignments")

    async def eligibilities(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_ELIGIBILITY))
        if self.s.faults.pim_unlicensed:
            raise Refusal(bad_request(request, MSG_UNLICENSED, code="AadPremiumLicenseRequired"))
        return self._list(request, eligible=True,
                          entity_set="roleManagement/directory/roleEligibilityScheduleInstances")

    def _list(self, request: web.Request, *, eligible: bool, entity_set: str) -> web.Response:
        raw = request.query.get("$filter", request.query.get("filter"))
        try:
            wanted = _matcher(raw)
        except ValueError:
            raise Refusal(bad_request(request, f"Invalid filter clause: {raw}", code="BadRequest")) from None
        expand = (request.query.get("$expand", request.query.get("expand")) or "").strip()
        if expand and expand.lower() != "roledefinition":
            raise Refusal(bad_request(request, f"The lab stand-in expands only roleDefinition, not '{expand}'.",
                                      code="BadRequest"))
        found = [a for a in self.s.role_assignments()
                 if a.eligible == eligible and all(_fields(a)[k] in v for k, v in wanted.items())]
        body: dict[str, Any] = {"@odata.context": f"{self.s.graph_base}/$metadata#{entity_set}",
                                "value": [a.as_graph(expand=bool(expand)) for a in found]}
        return graph_json(request, body)
