"""The Auth API v2 endpoints the bot uses (ping, check, preauth, auth, auth_status), as Duo answers them.

Every endpoint but ping needs a valid signature (``lab.duo.signature``); parameters arrive as a JSON body
(signature v4/v5, duo-client's default), a form body (v2) or the query (GET). Answers are Duo's envelope:
``{"stat": "OK", "response": ...}`` or ``{"stat": "FAIL", "code", "message", "message_detail"?}`` with the HTTP
status Duo uses. ``auth`` with ``async=1`` answers a txid at once; ``auth_status`` long-polls until the push is
answered or a few seconds pass; ``auth`` without async holds the request until the push is answered, as Duo does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from typing import Any

from aiohttp import web

from lab.duo import signature
from lab.duo.state import LONG_POLL_S, DuoState

_SECRET_PARAMS = frozenset({"passcode"})


def ok(response: Any) -> web.Response:
    return web.json_response({"stat": "OK", "response": response})


def fail(status: int, code: int, message: str, detail: str | None = None) -> web.Response:
    body: dict[str, Any] = {"stat": "FAIL", "code": code, "message": message}
    if detail is not None:
        body["message_detail"] = detail
    return web.json_response(body, status=status)


def invalid(detail: str) -> web.Response:
    return fail(400, 40002, "Invalid request parameters", detail)


class AuthAPI:
    def __init__(self, state: DuoState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/auth/v2/ping", self.ping),
            web.get("/auth/v2/check", self.signed(self.check)),
            web.post("/auth/v2/preauth", self.signed(self.preauth)),
            web.post("/auth/v2/auth", self.signed(self.auth)),
            web.get("/auth/v2/auth_status", self.signed(self.auth_status)),
        ]

    async def ping(self, request: web.Request) -> web.Response:
        self._log(request, signed=None, version=None, status=200, params={})
        return ok({"time": int(time.time())})

    def signed(self, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.Response:
            body = await request.read()
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            params: dict[str, list[str]]
            versions: tuple[int, ...]
            if request.method == "GET":
                params = dict(_multi(request.query_string))
                sign_params, sign_body, versions = params, b"", (5, 4, 2)
            elif content_type == "application/json":
                try:
                    loaded = json.loads(body or b"{}")
                except ValueError:
                    loaded = None
                if not isinstance(loaded, dict):
                    return self._refuse(request, invalid("body"), params={})
                params = {k: [str(v)] for k, v in loaded.items()}
                sign_params, sign_body, versions = {}, body, (5, 4)
            else:
                params = dict(_multi(body.decode("utf-8", "replace")))
                sign_params, sign_body, versions = params, b"", (2,)
            creds = signature.parse_authorization(request.headers.get("Authorization"))
            if creds is None:
                return self._refuse(request, fail(401, 40101, "Missing request credentials"), params=params)
            if creds.ikey != self.state.integration_key:
                return self._refuse(request, fail(401, 40102, "Invalid integration key in request credentials"),
                                    params=params)
            date = request.headers.get("Date", "")
            if not signature.date_is_fresh(date, time.time()):
                return self._refuse(request, fail(401, 40105, "Invalid or stale Date header"), params=params)
            version = signature.verified_version(
                creds, self.state.secret_key, date=date, method=request.method, host=self.state.api_host,
                path=request.path, params=sign_params, body=sign_body, headers=dict(request.headers),
                versions=versions)
            if version is None:
                return self._refuse(request, fail(401, 40103, "Invalid signature in request credentials"),
                                    params=params)
            single = {k: v[-1] for k, v in params.items()}
            response: web.Response = await handler(single)
            self._log(request, signed=True, version=version, status=response.status, params=params)
            return response

        return wrapped

    def _refuse(self, request: web.Request, response: web.Response, *, params: dict[str, list[str]]) -> web.Response:
        self._log(request, signed=False, version=None, status=response.status, params=params)
        return response

    def _log(self, request: web.Request, *, signed: bool | None, version: int | None, status: int,
             params: dict[str, list[str]]) -> None:
        shown = {k: ("<redacted>" if k in _SECRET_PARAMS else v[-1]) for k, v in params.items()}
        self.state.requests.append({"method": request.method, "path": request.path, "params": shown,
                                    "signature_ok": signed, "sig_version": version, "status": status,
                                    "time": time.time()})

    async def check(self, params: dict[str, str]) -> web.Response:
        return ok({"time": int(time.time())})

    async def preauth(self, params: dict[str, str]) -> web.Response:
        username = params.get("username")
        if not username:
            return invalid("username")
        device = self.state.enrolled.get(username)
        if device is None:
            # The default "new user policy" (require enrolment): Duo offers enrolment, never a push.
            return ok({"result": "enroll", "status_msg": "Enroll an authentication device to proceed",
                       "enroll_portal_url": f"https://{self.state.api_host}/portal?code=lab"})
        return ok({"result": "auth", "status_msg": "Account is active", "devices": [device.wire()]})

    async def auth(self, params: dict[str, str]) -> web.Response:
        username = params.get("username")
        if not username:
            return invalid("username")
        device = self.state.enrolled.get(username)
        if device is None:
            return invalid("username")
        if params.get("factor") != "push":
            return invalid("factor")
        wanted = params.get("device")
        if wanted is None:
            return invalid("device")
        if wanted not in ("auto", device.device):
            return invalid("device")
        push = self.state.start_push(username, device.device, type_=params.get("type"),
                                     pushinfo=params.get("pushinfo"), display_username=params.get("display_username"))
        if params.get("async") in ("1", "true"):
            return ok({"txid": push.txid})
        await push.decided.wait()
        result, status, status_msg = push.outcome()
        return ok({"result": result, "status": status, "status_msg": status_msg})

    async def auth_status(self, params: dict[str, str]) -> web.Response:
        push = self.state.pushes.get(params.get("txid", ""))
        if push is None:
            return invalid("txid")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(push.decided.wait(), LONG_POLL_S)
        result, status, status_msg = push.outcome()
        return ok({"result": result, "status": status, "status_msg": status_msg})


def _multi(query: str) -> list[tuple[str, list[str]]]:
    parsed = urllib.parse.parse_qs(query, keep_blank_values=True)
    return list(parsed.items())
