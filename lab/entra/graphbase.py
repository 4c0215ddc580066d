"""What every Graph route shares: the caller, permission sets, refusals, and user rendering helpers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from lab.entra.directory import DEFAULT_USER_PROPERTIES, EntraUser, known_user_properties, parse_select
from lab.entra.state import State
from lab.entra.wire import bad_request, denied, not_found

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MSG_BAD_JSON = ("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
                "valid JSON format.")

# Permission sets: (application roles, delegated scopes) that allow a call.
READ_USERS = ({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
              {"User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All",
               "Directory.AccessAsUser.All"})
READ_ME = (set[str](), {"User.Read", *READ_USERS[1]})
READ_MEMBERSHIP = ({"User.Read.All", "GroupMember.Read.All", "Directory.Read.All"},
                   {"User.Read.All", "User.ReadBasic.All", "GroupMember.Read.All", "Directory.Read.All"})
READ_ORG = ({"Organization.Read.All", "Directory.Read.All"}, {"User.Read", "Organization.Read.All",
                                                                "Directory.Read.All"})
RESET = (set[str](), {"UserAuthenticationMethod.ReadWrite.All"})
READ_OPERATION = ({"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"},
                  {"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"})
WRITE_METHODS = ({"UserAuthenticationMethod.ReadWrite.All"}, {"UserAuthenticationMethod.ReadWrite.All"})
#: revokeSignInSessions: User.RevokeSessions.All is the least privileged permission, delegated or application. The
#: lab's app is consented for none of these (README asks for none): only a delegated token, with the caller's role
#: checked, revokes anyone's sessions.
REVOKE_SESSIONS = ({"User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"},
                   {"User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All",
                    "Directory.AccessAsUser.All"})
PASSWORD_PROFILE = ({"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"},
                    set[str]())
ONPREM_SYNC = (set[str](), {"OnPremDirectorySynchronization.Read.All",
                            "OnPremDirectorySynchronization.ReadWrite.All"})


class Refusal(Exception):
    """A Graph error answer raised from inside a handler; the middleware sends it."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(frozen=True)
class Caller:
    """Who a valid access token speaks for: the app alone, or an agent through the app."""

    app_id: str
    user: EntraUser | None
    app_roles: frozenset[str]
    scopes: frozenset[str]

    @property
    def delegated(self) -> bool:
        return self.user is not None

    def allowed(self, permissions: tuple[set[str], set[str]]) -> bool:
        app, delegated = permissions
        return bool(self.scopes & delegated) if self.delegated else bool(self.app_roles & app)

    @property
    def roles(self) -> tuple[str, ...]:
        return self.user.roles if self.user else ()


CALLER: web.RequestKey[Caller] = web.RequestKey("caller")


def caller_of(request: web.Request) -> Caller:
    return request[CALLER]


class GraphRoutes:
    """Helpers the Graph route classes share; they raise Refusal, which the Graph middleware answers."""

    def __init__(self, state: State) -> None:
        self.s = state

    def _target(self, request: web.Request) -> EntraUser:
        ident = request.match_info["user"]
        user = self.s.user(ident)
        if user is None:
            raise Refusal(not_found(request, ident))
        return user

    @staticmethod
    def _require(request: web.Request, allowed: bool) -> None:
        if not allowed:
            raise Refusal(denied(request))

    async def _json_object(self, request: web.Request) -> dict[str, Any]:
        body = await self._json_body(request)
        if body is None:
            raise Refusal(bad_request(request, MSG_BAD_JSON, code="BadRequest"))
        return body

    def _select(self, request: web.Request) -> tuple[str, ...] | None:
        raw = request.query.get("$select", request.query.get("select"))
        return parse_select(raw, known_user_properties())

    def _render(self, user: EntraUser, select: tuple[str, ...] | None) -> dict[str, Any]:
        props = user.properties(self.s.last_sync())
        return {name: props[name] for name in (select or DEFAULT_USER_PROPERTIES)}

    def _context(self, entity_set: str, select: tuple[str, ...] | None, *, entity: bool) -> str:
        sel = f"({','.join(select)})" if select else ""
        return f"{self.s.graph_base}/$metadata#{entity_set}{sel}{'/$entity' if entity else ''}"

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any] | None:
        """The request's JSON object, or None when it is not one (never echoed: it may hold a password)."""
        try:
            body = json.loads(await request.text() or "null")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

