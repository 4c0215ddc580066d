"""Slack as ``resetbot doctor`` sees it: does the bot token authenticate and carry the scopes, and does the
app-level token open a Socket Mode connection. Nothing is posted and no socket is kept.

Slack names a token's granted scopes in the ``x-oauth-scopes`` header of every answer to a call made with it,
so ``auth.test`` tells both who the token is and what it may do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clients.http import tls_context
from bot.domain.groups import GroupFacts
from bot.errors import SlackUnavailableError


class SlackRefusedError(SlackUnavailableError):
    """Slack answered the call with an error code (``invalid_auth``, ``not_allowed_token_type``...)."""

    def __init__(self, error: str) -> None:
        super().__init__(f"Slack answered {error}.")
        self.error = error


class SlackUnreachableError(SlackUnavailableError):
    """No answer from Slack at all (refused connection, DNS, TLS, timeout); ``reason`` is the exception's kind."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Slack could not be reached ({reason}).")
        self.reason = reason


@dataclass(frozen=True)
class BotIdentity:
    team: str
    user: str
    #: None when Slack sent no x-oauth-scopes header.
    scopes: frozenset[str] | None


class SlackProbe:
    """Short-lived Web API clients, through ``proxy`` (a URL, credentials included) and trusting ``ca_file``
    (or the system's store), as the bot's own."""

    def __init__(self, api_base: str, *, timeout_s: int = 10, proxy: str | None = None,
                 ca_file: str | Path | None = None) -> None:
        self._api_base = api_base
        self._timeout = timeout_s
        self._proxy = proxy
        self._ca_file = ca_file

    def _client(self, token: str) -> WebClient:
        return WebClient(token=token, base_url=self._api_base, timeout=self._timeout, proxy=self._proxy,
                         ssl=tls_context(self._ca_file))

    def bot_identity(self, bot_token: str) -> BotIdentity:
        try:
            resp = self._client(bot_token).auth_test()
        except SlackApiError as e:
            raise SlackRefusedError(str(e.response.get("error"))) from None
        except OSError as e:
            raise SlackUnreachableError(type(e).__name__) from None
        header = next((v for k, v in resp.headers.items() if k.lower() == "x-oauth-scopes"), None)
        value = header[0] if isinstance(header, list) else header
        scopes = frozenset(s.strip() for s in str(value).split(",") if s.strip()) if value is not None else None
        return BotIdentity(team=str(resp.get("team") or ""), user=str(resp.get("user") or ""), scopes=scopes)

    def user_groups(self, bot_token: str) -> list[GroupFacts]:
        """Every enabled user group, with who created and last changed it (``usergroups.list``)."""
        try:
            resp = self._client(bot_token).usergroups_list()
        except SlackApiError as e:
            raise SlackRefusedError(str(e.response.get("error"))) from None
        except OSError as e:
            raise SlackUnreachableError(type(e).__name__) from None
        return [GroupFacts(id=str(g["id"]), handle=str(g.get("handle") or ""),
                           created_by=g.get("created_by") or None, updated_by=g.get("updated_by") or None)
                for g in resp["usergroups"]]

    def person(self, bot_token: str, user: str) -> tuple[str, bool]:
        """A member's name and whether they are a workspace admin or owner (``users.info``)."""
        try:
            u = self._client(bot_token).users_info(user=user)["user"]
        except SlackApiError as e:
            raise SlackRefusedError(str(e.response.get("error"))) from None
        except OSError as e:
            raise SlackUnreachableError(type(e).__name__) from None
        name = str(u.get("real_name") or u.get("name") or user)
        return name, bool(u.get("is_admin") or u.get("is_owner") or u.get("is_primary_owner"))

    def open_socket_url(self, app_token: str) -> None:
        """``apps.connections.open``: proof that the app-level token may open Socket Mode (the URL is dropped)."""
        try:
            self._client(app_token).apps_connections_open(app_token=app_token)
        except SlackApiError as e:
            raise SlackRefusedError(str(e.response.get("error"))) from None
        except OSError as e:
            raise SlackUnreachableError(type(e).__name__) from None
