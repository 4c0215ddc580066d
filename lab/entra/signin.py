"""Interactive sign-in: ``/authorize`` with a sign-in page (the ``authorization_code`` grant that redeems its code,
PKCE checked, is ``Identity._auth_code`` in :mod:`lab.entra.identity`).

What Entra enforces, the stand-in enforces: the client must be the public client, ``response_type=code``, the
``redirect_uri`` one registered on that app (AADSTS50011 otherwise, shown on Microsoft's page and never
redirected to), and the password checked against the lab AD by a simple bind as the person (pass-through
authentication; a cloud-only person's is checked against the tenant's own record). Every sign-in asks for the
password (there is no session cookie, as with ``prompt=login``). The code is redeemed once, within 10 minutes,
by the same client with the same ``redirect_uri`` and the ``code_verifier`` whose S256 (or plain) transform is
the ``code_challenge`` sent here; the ``nonce`` sent here comes back in the id token. The answer goes back as a
redirect with a query, or with ``response_mode=form_post`` as Entra's page whose form posts it.

Redirect URIs are registered with ``POST /control/redirect_uris`` (``{"redirect_uri": ...}``), as an
administrator adds them to the app registration; ``POST /control/reset`` removes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web
from ldap3.core.exceptions import LDAPException

from lab.ad.ldap import connect
from lab.entra import config
from lab.entra.identity import Identity, split_scopes
from lab.entra.state import AuthCode, AuthRequest, State
from lab.entra.wire import AadError, utcnow

#: How long an authorization code and a shown sign-in page stay good (Entra's codes last about 10 minutes).
CODE_LIFETIME_S = 600
#: Microsoft's sign-in pages are not cached and not framed.
_PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return web.Response(status=status, text=text, headers=_PAGE_HEADERS, content_type="text/html", charset="utf-8")


def _error_page(code: int, description: str, status: int = 400) -> web.Response:
    return _page("Sign in", f"<p id=\"error\">AADSTS{code}: {html.escape(description)}</p>", status)


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _answer(redirect_uri: str, params: dict[str, str], mode: str) -> web.Response:
    """The answer to the app: a redirect with the query, or (``form_post``) Entra's page whose form posts the
    fields to the redirect URI (a script submits it; without script, the button does)."""
    if mode != "form_post":
        raise web.HTTPFound(_with_query(redirect_uri, params))
    inputs = "".join(f"<input type=\"hidden\" name=\"{html.escape(k)}\" value=\"{html.escape(v)}\">"
                     for k, v in params.items())
    return _page("Working...", f"<form method=\"POST\" name=\"hiddenform\" action=\"{html.escape(redirect_uri)}\">"
                 f"{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p>"
                 "<input type=\"submit\" value=\"Submit\"></noscript></form>"
                 "<script>document.forms[0].submit()</script>")


class SignIn:
    """The routes of the interactive sign-in (the ``authorization_code`` grant is ``Identity._auth_code``)."""

    def __init__(self, state: State, ad: dict[str, Any] | None) -> None:
        self.s = state
        self._ad = ad

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/{tenant}/oauth2/v2.0/authorize", self.authorize),
            web.post("/{tenant}/login", self.login),
        ]

    # -- /authorize ---------------------------------------------------------------------------------------
    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        tenant = request.match_info["tenant"]
        if tenant.lower() not in (self.s.tenant_id, config.ONPREM_DOMAIN):
            return _error_page(90002, f"Tenant '{tenant}' not found.")
        client_id = q.get("client_id", "")
        if client_id != config.PUBLIC_CLIENT_ID:
            return _error_page(700016, f"Application with identifier '{client_id}' was not found in the directory "
                               f"'{config.TENANT_NAME}'.")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in self.s.redirect_uris:
            return _error_page(50011, f"The redirect URI '{redirect_uri}' specified in the request does not match "
                               f"the redirect URIs configured for the application '{client_id}'.")
        state = q.get("state", "")

        mode = q.get("response_mode", "query")
        if mode not in ("query", "form_post"):
            mode = "query"

        def refuse(error: str, code: int, description: str) -> web.Response:
            """Past the redirect URI's check, Entra sends its refusals back to the app."""
            params = {"error": error, "error_description": f"AADSTS{code}: {description}"}
            if state:
                params["state"] = state
            return _answer(redirect_uri, params, mode)

        if q.get("response_type") != "code":
            return refuse("unsupported_response_type", 700054, "response_type 'code' is required here.")
        method = q.get("code_challenge_method", "plain") if q.get("code_challenge") else ""
        if method not in ("", "S256", "plain"):
            return refuse("invalid_request", 501491, "Invalid code_challenge_method.")
        try:
            graph, _ = split_scopes(q.get("scope", ""))
            granted = Identity._delegated(graph)
        except AadError as err:
            return refuse(err.error, err.code, err.description)
        ctx = secrets.token_urlsafe(24)
        self.s.auth_requests[ctx] = AuthRequest(
            client_id=client_id, redirect_uri=redirect_uri, state=state, nonce=q.get("nonce"),
            code_challenge=q.get("code_challenge", ""), code_challenge_method=method,
            requested=tuple(q.get("scope", "").split()), granted=granted,
            expires_at=utcnow() + dt.timedelta(seconds=CODE_LIFETIME_S), login_hint=q.get("login_hint", ""),
            response_mode=mode)
        return self._form(ctx, q.get("login_hint", ""))

    def _form(self, ctx: str, login: str, error: str = "") -> web.Response:
        note = f"<p id=\"error\">{html.escape(error)}</p>" if error else ""
        return _page("Sign in", f"{note}<form method=\"post\" action=\"/{self.s.tenant_id}/login\">"
                     f"<input type=\"hidden\" name=\"ctx\" value=\"{html.escape(ctx)}\">"
                     f"<input type=\"email\" name=\"login\" value=\"{html.escape(login)}\">"
                     "<input type=\"password\" name=\"passwd\">"
                     "<input type=\"submit\" id=\"idSIButton9\" value=\"Sign in\"></form>")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        ctx = str(form.get("ctx", ""))
        pending = self.s.auth_requests.get(ctx)
        if pending is None or utcnow() >= pending.expires_at:
            self.s.auth_requests.pop(ctx, None)
            return _error_page(50058, "The sign-in session has expired or is unknown; start the sign-in again.")
        login, password = str(form.get("login", "")).strip(), str(form.get("passwd", ""))
        user = self.s.user(login)
        if user is None or not password or not await asyncio.to_thread(self._password_ok, user, password):
            return self._form(ctx, login, "AADSTS50126: Your account or password is incorrect.")
        if user.person.has("disabled"):
            return self._form(ctx, login, "AADSTS50057: The user account is disabled.")
        del self.s.auth_requests[ctx]
        code = f"1.lab.code.{secrets.token_urlsafe(48)}"
        self.s.auth_codes[code] = AuthCode(request=pending, person_key=user.person.key,
                                           expires_at=utcnow() + dt.timedelta(seconds=CODE_LIFETIME_S))
        params = {"code": code, "session_state": secrets.token_hex(16)}
        if pending.state:
            params["state"] = pending.state
        return _answer(pending.redirect_uri, params, pending.response_mode)

    def _password_ok(self, user: Any, password: str) -> bool:
        """Pass-through authentication: a simple bind to the lab AD as the person; cloud-only: Entra's record."""
        if user.person.dn is None or self._ad is None:
            return self.s.history.in_history(user.person.key, password, 1)
        try:
            conn = connect(user.person.upn, password, ca_file=Path(self._ad["ca_file"]), url=self._ad["ldaps_url"])
        except LDAPException:
            return False
        bound = bool(conn.bound)
        conn.unbind()
        return bound
