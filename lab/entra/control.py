"""The control API (under ``entra.control``) and the request log it serves.

Tests and the demo drive the stand-in through it: approve a device sign-in as a person, switch faults,
read every resetPassword operation and every request. Nothing here ever holds a password: the request log
keeps method, path, query, caller and status, never a body.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from lab.entra import config, rbac
from lab.entra.directory import EntraUser
from lab.entra.graphbase import Handler
from lab.entra.state import DeviceFlow, DeviceStatus, FaultError, State
from lab.entra.wire import LOG_APP, LOG_USER, utcnow

CONTROL_PREFIX = "/control"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class Control:
    """The routes under ``/control`` (not logged in the request log, not subject to faults)."""

    def __init__(self, state: State) -> None:
        self.s = state

    def routes(self) -> list[web.RouteDef]:
        c = CONTROL_PREFIX
        return [
            web.get(f"{c}/faults", self.get_faults),
            web.post(f"{c}/faults", self.set_faults),
            web.get(f"{c}/device", self.device_flows),
            web.get(f"{c}/device/interval", self.get_device_interval),
            web.post(f"{c}/device/interval", self.set_device_interval),
            web.post(f"{c}/device/approve", self.approve),
            web.post(f"{c}/device/decline", self.decline),
            web.post(f"{c}/device/expire", self.expire),
            web.get(f"{c}/operations", self.operations),
            web.get(f"{c}/requests", self.requests),
            web.post(f"{c}/reset", self.reset),
            web.get(f"{c}/consent", self.get_consent),
            web.post(f"{c}/consent", self.set_consent),
            web.get(f"{c}/roles", self.get_roles),
            web.post(f"{c}/roles", self.set_role),
            web.get(f"{c}/groups", self.get_groups),
            web.post(f"{c}/groups", self.set_group),
            web.post(f"{c}/users", self.change_user),
            web.get(f"{c}/redirect_uris", self.get_redirect_uris),
            web.post(f"{c}/redirect_uris", self.add_redirect_uri),
            web.get(f"{c}/sessions", self.sessions),
        ]

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # -- faults -----------------------------------------------------------------------------------------
    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.s.faults.as_json())

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return _error(400, "POST /faults needs a JSON object")
        try:
            self.s.faults.update(body)
        except FaultError as err:
            return _error(400, str(err))
        self.s.set_writeback(self.s.faults.writeback)
        self.s.set_hold(self.s.faults.hold_operations)
        self.s.set_answer_hold(bool(self.s.faults.hold_answers_to))
        return web.json_response(self.s.faults.as_json())

    # -- device sign-ins --------------------------------------------------------------------------------
    async def device_flows(self, request: web.Request) -> web.Response:
        return web.json_response([f.as_control() for f in self.s.device_flows.values()])

    async def get_device_interval(self, request: web.Request) -> web.Response:
        return web.json_response({"interval": self.s.device_code_interval_s})

    async def set_device_interval(self, request: web.Request) -> web.Response:
        """``{"interval": seconds}``: the polling interval announced to device flows started from now on, and held to
        with slow_down (flows already started keep theirs). Whole seconds, as Entra sends it and as msal counts it;
        ``POST /reset`` puts back the one the lab was started with (Microsoft's 5 s unless told otherwise)."""
        body = await self._body(request)
        value = (body or {}).get("interval")
        low, high = config.DEVICE_CODE_INTERVAL_RANGE_S
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return _error(400, f"POST /device/interval needs {{\"interval\": whole seconds from {low} to {high}}}")
        self.s.device_code_interval_s = value
        return web.json_response({"interval": value})

    def _flow_for(self, body: dict[str, Any]) -> DeviceFlow | None:
        code = str(body.get("user_code", "")).strip().upper()
        return next((f for f in self.s.device_flows.values() if f.user_code == code), None)

    async def approve(self, request: web.Request) -> web.Response:
        """Complete a pending device-code sign-in as the person with ``upn`` (as if they typed the code)."""
        body = await self._body(request)
        if body is None:
            return _error(400, "POST /device/approve needs {\"user_code\", \"upn\"}")
        flow = self._flow_for(body)
        if flow is None:
            return _error(404, "no device sign-in with that user_code")
        user = self.s.user(str(body.get("upn", "")))
        if user is None:
            return _error(404, f"no user {body.get('upn')!r} in the lab tenant")
        if user.person.has("disabled"):
            return _error(409, "AADSTS50057: The user account is disabled; the sign-in cannot complete.")
        if flow.status == "pending" and utcnow() >= flow.expires_at:
            flow.status = "expired"
        if flow.status != "pending":
            return _error(409, f"the device sign-in is {flow.status}, not pending")
        flow.status = "approved"
        flow.person_key = user.person.key
        return web.json_response({"user_code": flow.user_code, "upn": user.person.upn, "status": flow.status})

    async def _finish(self, request: web.Request, status: DeviceStatus) -> web.Response:
        body = await self._body(request)
        flow = self._flow_for(body or {})
        if flow is None:
            return _error(404, "no device sign-in with that user_code")
        if flow.status != "pending":
            return _error(409, f"the device sign-in is {flow.status}, not pending")
        flow.status = status
        return web.json_response({"user_code": flow.user_code, "status": flow.status})

    async def decline(self, request: web.Request) -> web.Response:
        """The person refuses the sign-in: the next poll gets authorization_declined."""
        return await self._finish(request, "declined")

    async def expire(self, request: web.Request) -> web.Response:
        """Let the code run out now: the next poll gets expired_token."""
        return await self._finish(request, "expired")

    # -- the public client's redirect URIs ------------------------------------------------------------------
    async def get_redirect_uris(self, request: web.Request) -> web.Response:
        return web.json_response({"redirect_uris": sorted(self.s.redirect_uris)})

    async def add_redirect_uri(self, request: web.Request) -> web.Response:
        """Register ``{"redirect_uri"}`` on the public client, as an administrator does under Authentication in
        the app registration; Entra takes https URIs only (and http://localhost, not needed here)."""
        uri = str((await self._body(request) or {}).get("redirect_uri", ""))
        if not uri.startswith("https://"):
            return _error(400, "POST /redirect_uris needs {\"redirect_uri\": an https URL}")
        self.s.redirect_uris.add(uri)
        return web.json_response({"redirect_uris": sorted(self.s.redirect_uris)})

    # -- the app's admin consent, and role assignments ---------------------------------------------------
    async def get_consent(self, request: web.Request) -> web.Response:
        return web.json_response({"app_roles": list(self.s.app_roles)})

    async def set_consent(self, request: web.Request) -> web.Response:
        """Replace the application permissions admin-consented for the bot's app (``{"app_roles": [...]}``), as an
        administrator would in the portal; app tokens issued from now on carry them (msal caches the old token)."""
        body = await self._body(request)
        roles = (body or {}).get("app_roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            return _error(400, "POST /consent needs {\"app_roles\": [application permission names]}")
        self.s.app_roles = tuple(dict.fromkeys(roles))
        return web.json_response({"app_roles": list(self.s.app_roles)})

    async def get_roles(self, request: web.Request) -> web.Response:
        user = self.s.user(request.query.get("upn", ""))
        if user is None:
            return _error(404, f"no user {request.query.get('upn')!r} in the lab tenant")
        return web.json_response({"upn": user.person.upn, "assignments": [a.as_control() for a in user.assignments]})

    async def set_role(self, request: web.Request) -> web.Response:
        """Assign (or with ``"remove": true`` take away) a role: ``{"upn", "role", "eligible"?: bool,
        "administrative_unit"?: name, "custom"?: bool}``. A role that is not one of Entra's built-in roles the
        stand-in knows must say ``"custom": true`` (so a typo never makes a custom role). ``"group": name`` instead
        of ``"upn"`` assigns it to a role-assignable group made with ``POST /groups``."""
        body = await self._body(request)
        if body is None:
            return _error(400, "POST /roles needs a JSON object")
        user: EntraUser | rbac.RoleGroup | None
        if "group" in body:
            user = self.s.role_groups.get(str(body["group"]))
            if user is None:
                return _error(404, f"no role-assignable group {body.get('group')!r}: make it with POST /groups")
        else:
            user = self.s.user(str(body.get("upn", "")))
            if user is None:
                return _error(404, f"no user {body.get('upn')!r} in the lab tenant")
        role, unit = body.get("role"), body.get("administrative_unit")
        flags = {k: body.get(k, False) for k in ("eligible", "custom", "remove")}
        if not isinstance(role, str) or not role.strip() or not all(isinstance(v, bool) for v in flags.values()):
            return _error(400, "role must be a name; eligible, custom and remove must be true or false")
        if unit is not None and (not isinstance(unit, str) or not unit.strip()):
            return _error(400, "administrative_unit must be the unit's name")
        if rbac.is_built_in(role) == flags["custom"]:
            return _error(400, f"{role!r} is {'a built-in role' if flags['custom'] else 'no built-in role'}: "
                               "say \"custom\": true for a custom role, and only then")
        scope = f"/administrativeUnits/{rbac.administrative_unit_id(unit)}" if unit else rbac.TENANT_SCOPE
        assignment = rbac.RoleAssignment(user.id, role, eligible=flags["eligible"], scope=scope)
        kept = [a for a in user.assignments if a != assignment]
        user.assignments = kept if flags["remove"] else [*kept, assignment]
        if isinstance(user, rbac.RoleGroup):
            return web.json_response(user.as_control(self._upns()))
        return web.json_response({"upn": user.person.upn, "assignments": [a.as_control() for a in user.assignments]})

    # -- role-assignable groups and PIM for Groups ---------------------------------------------------------
    def _upns(self) -> dict[str, str]:
        return {u.id: u.person.upn for u in self.s.users.values()}

    async def get_groups(self, request: web.Request) -> web.Response:
        upns = self._upns()
        return web.json_response([g.as_control(upns) for g in self.s.role_groups.values()])

    async def set_group(self, request: web.Request) -> web.Response:
        """Make (or replace) a cloud role-assignable group: ``{"name", "members"?: [upn], "owners"?: [upn],
        "eligible_members"?: [upn], "eligible_owners"?: [upn]}``, the last two being PIM for Groups eligibility;
        ``{"name", "remove": true}`` deletes it. A replaced group keeps its role assignments."""
        body = await self._body(request)
        name = (body or {}).get("name")
        if body is None or not isinstance(name, str) or not name.strip():
            return _error(400, "POST /groups needs {\"name\", \"members\"?, \"owners\"?, \"eligible_members\"?, "
                               "\"eligible_owners\"?} or {\"name\", \"remove\": true}")
        if body.get("remove") is True:
            self.s.role_groups.pop(name, None)
            return web.json_response({"name": name, "removed": True})
        ids: dict[str, set[str]] = {}
        for key in ("members", "owners", "eligible_members", "eligible_owners"):
            upns = body.get(key, [])
            if not isinstance(upns, list) or not all(isinstance(u, str) for u in upns):
                return _error(400, f"{key} must be a list of UPNs")
            users = [self.s.user(u) for u in upns]
            missing = [u for u, found in zip(upns, users, strict=True) if found is None]
            if missing:
                return _error(404, f"no user {missing[0]!r} in the lab tenant")
            ids[key] = {u.id for u in users if u is not None}
        old = self.s.role_groups.get(name)
        group = rbac.RoleGroup(name, members=ids["members"], owners=ids["owners"],
                               eligible={(u, "member") for u in ids["eligible_members"]}
                               | {(u, "owner") for u in ids["eligible_owners"]},
                               assignments=old.assignments if old else [])
        self.s.role_groups[name] = group
        return web.json_response(group.as_control(self._upns()))


    # -- directory changes ----------------------------------------------------------------------------------
    async def change_user(self, request: web.Request) -> web.Response:
        """``{"upn", "mail"?, "display_name"?}``: the user's ``mail`` or ``displayName`` changed on-premises and
        synced by Entra Connect, as anyone allowed to edit those AD attributes (often the helpdesk) can make happen;
        null puts the fixture's back (as ``POST /reset`` does). The UPN cannot be changed here."""
        body = await self._body(request)
        if body is None or not ({"mail", "display_name"} & body.keys()):
            return _error(400, "POST /users needs {\"upn\", \"mail\"?, \"display_name\"?}")
        user = self.s.user(str(body.get("upn", "")))
        if user is None:
            return _error(404, f"no user {body.get('upn')!r} in the lab tenant")
        mail = body.get("mail", user.mail)
        if mail is not None and (not isinstance(mail, str) or "@" not in mail):
            return _error(400, "mail must be an address, or null for the fixture's")
        name = body.get("display_name", user.display_name)
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 256):
            return _error(400, "display_name must be 1 to 256 characters (Entra's limit), or null for the fixture's")
        user.mail, user.display_name = mail, name
        return web.json_response({"upn": user.person.upn, "mail": mail or user.person.mail,
                                  "display_name": name or user.person.display_name})

    async def sessions(self, request: web.Request) -> web.Response:
        """``?upn=``: what containment changes on a user, as an administrator sees it in the portal: when sign-in
        sessions were last revoked (``signInSessionsValidFromDateTime``), how many times, and the user's Temporary
        Access Passes (never their values)."""
        user = self.s.user(request.query.get("upn", ""))
        if user is None:
            return _error(404, f"no user {request.query.get('upn')!r} in the lab tenant")
        now = utcnow()
        valid_from = user.sign_in_sessions_valid_from or user.created
        return web.json_response({"upn": user.person.upn, "sign_in_sessions_valid_from": valid_from.isoformat(),
                                  "revocations": user.revocations, "taps": [t.as_json(now) for t in user.taps]})

    # -- logs -------------------------------------------------------------------------------------------
    async def operations(self, request: web.Request) -> web.Response:
        return web.json_response([op.as_control() for op in self.s.operations.values()])

    async def requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.s.requests)

    async def reset(self, request: web.Request) -> web.Response:
        """Faults off; operations, request log and device sign-ins cleared; the app's consent and role assignments
        back to the start. ``{"history": true}`` also forgets the emulated password history (back to the fixture
        passwords). Tokens stay valid."""
        body = await self._body(request) or {}
        self.s.reset(history=bool(body.get("history", False)))
        return web.json_response({"reset": True, "faults": self.s.faults.as_json()})


def _kind(path: str) -> str:
    if path.startswith("/v1.0"):
        return "graph"
    if "/oauth2/" in path:
        return "token"
    return "discovery"


def request_log_middleware(state: State) -> Any:
    """Record every request except the control API's: method, path, query, caller app/user, status."""

    @web.middleware
    async def log(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            state.requests.append({
                "time": utcnow().isoformat(),
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "kind": _kind(request.path),
                "app": request.get(LOG_APP),
                "user": request.get(LOG_USER),
                "status": status,
            })

    return log
