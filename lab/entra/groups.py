"""Graph's group reads the bot makes: the role-assignable groups (``GET /groups?$filter=isAssignableToRole eq
true``) and a group's owners (``GET /groups/{id}/owners``), with Graph's shapes, paging and permissions.

Owning a group is no PIM feature: in a tenant without Entra ID P2 the owner of a role-assignable group may still
add himself as a member (owners, Privileged Role Administrators and Global Administrators manage such a group's
membership), and Graph lists owners here whatever the licence. A user's ``ownedObjects`` takes no application
permission, so the app reads owners from the group's side. Both lists are paged like Graph's (100 a page unless
``$top`` says otherwise, ``@odata.nextLink`` to the next), so a client that reads one page misses the rest.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from lab.entra.directory import SYNCED_GROUPS, group_json
from lab.entra.graphbase import GraphRoutes, Refusal, caller_of
from lab.entra.wire import bad_request, graph_json, not_found

READ_GROUPS = ({"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All",
                "Directory.ReadWrite.All"},
               {"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All"})
_ASSIGNABLE = re.compile(r"^\s*isAssignableToRole\s+eq\s+(true|false)\s*$", re.IGNORECASE)


class Groups(GraphRoutes):
    """``/v1.0/groups`` (filtered on ``isAssignableToRole`` only) and ``/v1.0/groups/{id}/owners``."""

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1.0/groups", self.list_groups), web.get("/v1.0/groups/{group}/owners", self.owners)]

    async def list_groups(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_GROUPS))
        groups = [group_json(g) for g in SYNCED_GROUPS] + [g.as_graph() for g in self.s.role_groups.values()]
        raw = request.query.get("$filter", request.query.get("filter"))
        if raw:
            m = _ASSIGNABLE.match(raw)
            if m is None:
                raise Refusal(bad_request(request, f"Unsupported filter in the lab: {raw}", code="BadRequest"))
            wanted = m.group(1).lower() == "true"
            groups = [g for g in groups if bool(g.get("isAssignableToRole")) is wanted]
        return self._paged(request, "groups", groups)

    async def owners(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_GROUPS))
        ident = request.match_info["group"].lower()
        group = next((g for g in self.s.role_groups.values() if g.id.lower() == ident), None)
        if group is None:
            if any(str(group_json(g)["id"]).lower() == ident for g in SYNCED_GROUPS):
                return self._paged(request, "directoryObjects", [])
            raise Refusal(not_found(request, ident))
        users = [self.s.user(i) for i in sorted(group.owners)]
        found = [{"@odata.type": "#microsoft.graph.user", "id": u.id,
                  "userPrincipalName": u.properties(self.s.last_sync())["userPrincipalName"]}
                 for u in users if u is not None]
        return self._paged(request, "directoryObjects", found)

    def _paged(self, request: web.Request, entity_set: str, items: list[dict[str, Any]]) -> web.Response:
        try:
            top = int(request.query.get("$top", "100"))
            skip = int(base64.urlsafe_b64decode(request.query["$skiptoken"]).decode()) \
                if "$skiptoken" in request.query else 0
        except (ValueError, binascii.Error):
            raise Refusal(bad_request(request, "Invalid $top or $skiptoken.", code="BadRequest")) from None
        if not 1 <= top <= 999:
            raise Refusal(bad_request(request, f"Invalid page size specified: '{top}'. Must be between 1 and 999 "
                                      "inclusive."))
        raw = request.query.get("$select", request.query.get("select"))
        wanted = {p.strip().lower() for p in raw.split(",")} if raw else None
        page = [{k: v for k, v in o.items() if wanted is None or k == "@odata.type" or k.lower() in wanted}
                for o in items[skip:skip + top]]
        body: dict[str, Any] = {"@odata.context": f"{self.s.graph_base}/$metadata#{entity_set}", "value": page}
        if skip + top < len(items):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = base64.urlsafe_b64encode(str(skip + top).encode()).decode()
            body["@odata.nextLink"] = f"{self.s.graph_base}{request.path.removeprefix('/v1.0')}?{urlencode(query)}"
        return graph_json(request, body)
