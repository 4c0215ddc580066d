"""Graph's PIM for Groups (``identityGovernance/privilegedAccess/group``): who is eligible for membership or
ownership of a group (``eligibilityScheduleInstances``) and who holds it now (``assignmentScheduleInstances``), with
Graph's shapes and permissions.

Graph v1.0 requires a ``$filter`` on ``principalId`` or ``groupId`` (``eq``) for both lists, and accepts ``accessId
eq 'member'|'owner'`` with it, joined by ``and``: anything else is a 400 here. Each needs its own application
permission (``PrivilegedEligibilitySchedule.Read.AzureADGroup``, ``PrivilegedAssignmentSchedule.Read.AzureADGroup``
or their ReadWrite forms); a delegated call gets 403 (the bot's public client consents none of them). PIM is an
Entra ID P2 (or Governance) feature: with the ``pim_unlicensed`` fault both answer 400 ``AadPremiumLicenseRequired``,
as ``roleEligibilityScheduleInstances`` does. Only the lab's role-assignable groups (lab.entra.rbac) are governed by
PIM here; the synced groups are not.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web

from lab.entra.graphbase import GraphRoutes, Refusal, caller_of
from lab.entra.rbac import RoleGroup
from lab.entra.rolemanagement import MSG_UNLICENSED
from lab.entra.wire import bad_request, graph_json

READ_GROUP_ELIGIBILITY = ({"PrivilegedEligibilitySchedule.Read.AzureADGroup",
                           "PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup"}, set[str]())
READ_GROUP_ASSIGNMENTS = ({"PrivilegedAssignmentSchedule.Read.AzureADGroup",
                           "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"}, set[str]())

_NAMESPACE = uuid.UUID("5b9d2e17-3c4a-4f0e-a6d8-9e1b7c2f4a60")
_CLAUSE = re.compile(r"^\s*(principalId|groupId|accessId)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
MSG_FILTER_REQUIRED = "The request must filter on principalId or groupId, e.g. $filter=principalId eq '{id}'."


def _matcher(raw: str | None) -> dict[str, str]:
    """{property: value} of the ``eq`` clauses; ValueError when one is not understood or neither the principal nor
    the group is named (Graph refuses to list every group's schedule at once)."""
    wanted: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", (raw or "").strip(), flags=re.IGNORECASE) if raw and raw.strip() else []:
        m = _CLAUSE.match(clause)
        if m is None:
            raise ValueError(f"Invalid filter clause: {clause}")
        wanted[m.group(1).lower()] = m.group(2).lower()
    if not ({"principalid", "groupid"} & wanted.keys()):
        raise ValueError(MSG_FILTER_REQUIRED)
    return wanted


def _instance(group: RoleGroup, principal: str, access: str, *, eligible: bool) -> dict[str, Any]:
    kind = "eligibility" if eligible else "assignment"
    schedule = str(uuid.uuid5(_NAMESPACE, f"{kind}:{group.id}:{principal}:{access}"))
    body: dict[str, Any] = {"id": schedule, "groupId": group.id, "principalId": principal, "accessId": access,
                            "memberType": "direct", "startDateTime": "2024-01-01T00:00:00Z", "endDateTime": None}
    if eligible:
        body["eligibilityScheduleId"] = schedule
    else:
        body |= {"assignmentScheduleId": schedule, "assignmentType": "assigned"}
    return body


class PimForGroups(GraphRoutes):
    """``/v1.0/identityGovernance/privilegedAccess/group/{eligibility,assignment}ScheduleInstances``."""

    def routes(self) -> list[web.RouteDef]:
        base = "/v1.0/identityGovernance/privilegedAccess/group"
        return [
            web.get(f"{base}/eligibilityScheduleInstances", self.eligibilities),
            web.get(f"{base}/assignmentScheduleInstances", self.assignments),
        ]

    async def eligibilities(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_GROUP_ELIGIBILITY))
        return self._list(request, eligible=True)

    async def assignments(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_GROUP_ASSIGNMENTS))
        return self._list(request, eligible=False)

    def _list(self, request: web.Request, *, eligible: bool) -> web.Response:
        if self.s.faults.pim_unlicensed:
            raise Refusal(bad_request(request, MSG_UNLICENSED, code="AadPremiumLicenseRequired"))
        try:
            wanted = _matcher(request.query.get("$filter", request.query.get("filter")))
        except ValueError as e:
            raise Refusal(bad_request(request, str(e), code="BadRequest")) from None
        found = []
        for group in self.s.role_groups.values():
            pairs = sorted(group.eligible) if eligible else group.active()
            for principal, access in pairs:
                fields = {"principalid": principal.lower(), "groupid": group.id.lower(), "accessid": access}
                if all(fields[k] == v for k, v in wanted.items()):
                    found.append(_instance(group, principal, access, eligible=eligible))
        kind = "eligibilityScheduleInstances" if eligible else "assignmentScheduleInstances"
        return graph_json(request, {
            "@odata.context": f"{self.s.graph_base}/$metadata#identityGovernance/privilegedAccess/group/{kind}",
            "value": found})
