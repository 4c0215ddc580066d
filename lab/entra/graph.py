"""The Microsoft Graph v1.0 subset the bot uses, with Graph's shapes, status codes and error bodies.

This module holds the gate every Graph call passes (injected latency, token validation, injected faults)
and the reads: users, manager, memberships, organization, on-prem synchronization. Calls that change a
password are in methods.py.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web

from lab.entra import config, roles
from lab.entra.directory import (
    SYNCED_GROUPS,
    EntraUser,
    SelectError,
    compile_filter,
    group_json,
    parse_select,
    role_json,
)
from lab.entra.graphbase import (
    CALLER,
    ONPREM_SYNC,
    READ_ME,
    READ_MEMBERSHIP,
    READ_ORG,
    READ_USERS,
    Caller,
    GraphRoutes,
    Handler,
    Refusal,
    caller_of,
)
from lab.entra.wire import LOG_APP, LOG_USER, bad_request, graph_error, graph_json, graph_time, not_found

log = logging.getLogger(__name__)

#: What lets a caller see a group's properties in a membership list (else only its type and id).
READ_GROUP_PROPERTIES = ({"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All",
                          "Directory.ReadWrite.All"},
                         {"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All"})


class Graph(GraphRoutes):
    """The routes under ``/v1.0`` and their middleware (latency, authentication, injected faults)."""

    def routes(self) -> list[web.RouteDef]:
        u = "/v1.0/users/{user}"
        return [
            web.get("/v1.0/me", self.me),
            web.get("/v1.0/users", self.list_users),
            web.get(u, self.get_user),
            web.get(u + "/manager", self.manager),
            web.get(u + "/transitiveMemberOf", self.member_of),
            web.get(u + "/transitiveMemberOf/microsoft.graph.group", self.member_of_groups),
            web.get(u + "/memberOf", self.member_of),
            web.get("/v1.0/organization", self.organization),
            web.get("/v1.0/directory/onPremisesSynchronization", self.onprem_sync),
        ]

    def fallback_routes(self) -> list[web.RouteDef]:
        """Graph's answer for any other path; register these after every other /v1.0 route."""
        return [web.route("*", "/v1.0/{tail:.*}", self.unknown_segment)]

    # -- middleware: faults, then authentication --------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1.0/"):
            return await handler(request)
        if self.s.faults.latency_ms:
            await asyncio.sleep(self.s.faults.latency_ms / 1000)
        try:
            caller = self._authenticate(request)
            request[CALLER] = caller
            request[LOG_APP] = caller.app_id
            request[LOG_USER] = caller.user.person.upn if caller.user else None
            self._injected_fault(request)
            response = await handler(request)
            held = self.s.faults.hold_answers_to
            if held and held in request.path:
                await self.s.hold_answer()  # Graph acted; its answer is held back (hold_answers_to)
            return response
        except Refusal as refusal:
            return refusal.response
        except SelectError as err:
            return bad_request(request, str(err), code=err.code)
        except web.HTTPMethodNotAllowed:
            return graph_error(request, 405, "Request_BadRequest",
                               f"The request method '{request.method}' is not supported on this resource.")
        except Exception:
            # Logged without the request body (it may hold a password); the answer names nothing either.
            log.exception("Graph stand-in failed on %s %s", request.method, request.path)
            return graph_error(request, 500, "generalException", "An internal server error occurred.")

    def _injected_fault(self, request: web.Request) -> None:
        """throttle_next, then fail_next_5xx: each answers (and uses up) one authenticated Graph call (one whose
        path holds ``fault_path``, when that is set)."""
        faults = self.s.faults
        if faults.fault_path and faults.fault_path not in request.path:
            return
        if faults.throttle_next > 0:
            faults.throttle_next -= 1
            after = faults.retry_after_header()
            raise Refusal(graph_error(request, 429, "TooManyRequests",
                                      f"Too many requests. Retry after {after} seconds.",
                                      headers={"Retry-After": after}))
        if faults.fail_next_5xx > 0:
            faults.fail_next_5xx -= 1
            raise Refusal(graph_error(request, 503, "serviceNotAvailable",
                                      "The service is temporarily unavailable. Try again later."))

    def _authenticate(self, request: web.Request) -> Caller:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._unauthenticated(request, "Access token is empty.")
        try:
            claims = self.s.issuer.verify_access_token(token.strip())
        except jwt.ExpiredSignatureError:
            raise self._unauthenticated(request, "Lifetime validation failed, the token is expired.") from None
        except jwt.InvalidAudienceError:
            raise self._unauthenticated(request, "Access token validation failure. Invalid audience.") from None
        except jwt.PyJWTError:
            raise self._unauthenticated(request, "Access token validation failure.") from None
        user = None
        if claims.get("idtyp") == "user":
            user = self.s.user(str(claims.get("oid", "")))
            if user is None:
                raise self._unauthenticated(request, "Access token validation failure.")
        return Caller(
            app_id=str(claims.get("appid", "")),
            user=user,
            app_roles=frozenset(claims.get("roles", [])),
            scopes=frozenset(str(claims.get("scp", "")).split()),
        )

    def _unauthenticated(self, request: web.Request, message: str) -> Refusal:
        challenge = {"WWW-Authenticate": f'Bearer realm="", authorization_uri="{self.s.authority}/oauth2/authorize",'
                                         f' client_id="{config.GRAPH_APP_ID}"'}
        return Refusal(graph_error(request, 401, "InvalidAuthenticationToken", message, headers=challenge))

    async def unknown_segment(self, request: web.Request) -> web.Response:
        segment = request.match_info["tail"].split("/")[0] or "v1.0"
        return graph_error(request, 400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    # -- users ------------------------------------------------------------------------------------------
    async def me(self, request: web.Request) -> web.Response:
        caller = caller_of(request)
        if caller.user is None:
            raise Refusal(bad_request(request, "/me request is only valid with delegated authentication flow.",
                                      code="BadRequest"))
        self._require(request, caller.allowed(READ_ME))
        select = self._select(request)
        return graph_json(request, {"@odata.context": self._context("users", select, entity=True),
                                    **self._render(caller.user, select)})

    async def get_user(self, request: web.Request) -> web.Response:
        caller = caller_of(request)
        target = self._target(request)
        self._require(request, caller.allowed(READ_USERS) or (caller.user is target and caller.allowed(READ_ME)))
        select = self._select(request)
        return graph_json(request, {"@odata.context": self._context("users", select, entity=True),
                                    **self._render(target, select)})

    async def list_users(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_USERS))
        select = self._select(request)
        users = list(self.s.users.values())
        raw_filter = request.query.get("$filter", request.query.get("filter"))
        if raw_filter:
            matches = compile_filter(raw_filter)
            last_sync = self.s.last_sync()
            users = [u for u in users if matches(u.properties(last_sync))]
        top, skip = self._page(request)
        page = users[skip:skip + top]
        body: dict[str, Any] = {"@odata.context": self._context("users", select, entity=False),
                                "value": [self._render(u, select) for u in page]}
        if skip + top < len(users):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = base64.urlsafe_b64encode(str(skip + top).encode()).decode()
            body["@odata.nextLink"] = f"{self.s.graph_base}/users?{urlencode(query)}"
        return graph_json(request, body)

    @staticmethod
    def _page(request: web.Request) -> tuple[int, int]:
        """($top, offset from $skiptoken): the skip token is opaque to clients, an offset here."""
        try:
            top = int(request.query.get("$top", "100"))
            skip = int(base64.urlsafe_b64decode(request.query["$skiptoken"]).decode()) \
                if "$skiptoken" in request.query else 0
        except (ValueError, binascii.Error):
            raise Refusal(bad_request(request, "Invalid $top or $skiptoken.", code="BadRequest")) from None
        if not 1 <= top <= 999:
            raise Refusal(bad_request(request, f"Invalid page size specified: '{top}'. Must be between 1 and 999 "
                                      "inclusive."))
        return top, skip

    async def manager(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_USERS))
        target = self._target(request)
        manager = self.s.user_by_key(target.person.manager) if target.person.manager else None
        if manager is None:
            raise Refusal(not_found(request, "manager"))
        select = self._select(request)
        return graph_json(request, {"@odata.context": f"{self.s.graph_base}/$metadata#directoryObjects/$entity",
                                    "@odata.type": "#microsoft.graph.user", **self._render(manager, select)})

    def _memberships(self, target: EntraUser, *, groups_only: bool) -> list[dict[str, Any]]:
        out = [group_json(g) for g in SYNCED_GROUPS if g in target.person.groups]
        out += [g.as_graph() for g in self.s.role_groups.values() if target.id in g.members]
        if not groups_only:
            out += [role_json(r) for r in target.directory_roles]
        return out

    async def _member_of(self, request: web.Request, *, groups_only: bool) -> web.Response:
        caller = caller_of(request)
        self._require(request, caller.allowed(READ_MEMBERSHIP))
        target = self._target(request)
        objects = self._memberships(target, groups_only=groups_only)
        if not caller.allowed(READ_GROUP_PROPERTIES):
            # Graph's "limited information returned for inaccessible member objects": an app that may read the
            # user (User.Read.All) but not groups gets each group's type and id, every other property null.
            objects = [{k: (v if k in ("@odata.type", "id") else None) for k, v in o.items()}
                       if o.get("@odata.type") == "#microsoft.graph.group" else o for o in objects]
        raw = request.query.get("$select", request.query.get("select"))
        if raw:
            wanted = {p.strip().lower() for p in raw.split(",")}
            objects = [{k: v for k, v in o.items() if k == "@odata.type" or k.lower() in wanted} for o in objects]
        entity_set = "groups" if groups_only else "directoryObjects"
        return graph_json(request, {"@odata.context": f"{self.s.graph_base}/$metadata#{entity_set}",
                                    "value": objects})

    async def member_of(self, request: web.Request) -> web.Response:
        return await self._member_of(request, groups_only=False)

    async def member_of_groups(self, request: web.Request) -> web.Response:
        return await self._member_of(request, groups_only=True)

    # -- tenant -----------------------------------------------------------------------------------------
    async def organization(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_ORG))
        props: dict[str, Any] = {
            "id": self.s.tenant_id,
            "displayName": config.TENANT_NAME,
            "tenantType": "AAD",
            "countryLetterCode": "US",
            "onPremisesSyncEnabled": True,
            "onPremisesLastSyncDateTime": graph_time(self.s.last_sync()),
            "onPremisesLastPasswordSyncDateTime": graph_time(self.s.last_password_sync()),
            "verifiedDomains": [{"name": config.ONPREM_DOMAIN, "type": "Managed", "isDefault": True,
                                 "isInitial": False, "capabilities": "Email, OfficeCommunicationsOnline"}],
        }
        raw = request.query.get("$select", request.query.get("select"))
        select = parse_select(raw, frozenset(props)) if raw else None
        shown = {k: props[k] for k in select} if select else props
        return graph_json(request, {"@odata.context": self._context("organization", select, entity=False),
                                    "value": [shown]})

    async def onprem_sync(self, request: web.Request) -> web.Response:
        caller = caller_of(request)
        self._require(request, caller.allowed(ONPREM_SYNC) and roles.GLOBAL in caller.roles)
        writeback = self.s.faults.writeback != "disabled"
        return graph_json(request, {
            "@odata.context": f"{self.s.graph_base}/$metadata#directory/onPremisesSynchronization",
            "value": [{
                "id": self.s.tenant_id,
                "configuration": {
                    "synchronizationInterval": "PT30M",
                    "customerRequestedSynchronizationInterval": None,
                    "accidentalDeletionPrevention": {"synchronizationPreventionType": "enabledForCount",
                                                     "alertThreshold": 500},
                },
                "features": _features(password_writeback=writeback),
            }],
        })


def _features(*, password_writeback: bool) -> dict[str, bool]:
    names: Iterable[str] = (
        "blockCloudObjectTakeoverThroughHardMatchEnabled", "blockSoftMatchEnabled",
        "bypassDirSyncOverridesEnabled", "cloudPasswordPolicyForPasswordSyncedUsersEnabled",
        "concurrentCredentialUpdateEnabled", "concurrentOrgIdProvisioningEnabled", "deviceWritebackEnabled",
        "directoryExtensionsEnabled", "fopeConflictResolutionEnabled", "groupWriteBackEnabled",
        "passwordSyncEnabled", "passwordWritebackEnabled", "quarantineUponProxyAddressesConflictEnabled",
        "quarantineUponUpnConflictEnabled", "softMatchOnUpnEnabled", "synchronizeUpnForManagedUsersEnabled",
        "unifiedGroupWritebackEnabled", "userForcePasswordChangeOnLogonEnabled", "userWritebackEnabled",
    )
    on = {"blockCloudObjectTakeoverThroughHardMatchEnabled", "concurrentOrgIdProvisioningEnabled",
          "directoryExtensionsEnabled", "passwordSyncEnabled", "quarantineUponProxyAddressesConflictEnabled",
          "quarantineUponUpnConflictEnabled", "softMatchOnUpnEnabled", "synchronizeUpnForManagedUsersEnabled"}
    features = {name: name in on for name in names}
    features["passwordWritebackEnabled"] = password_writeback
    return features
