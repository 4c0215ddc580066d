"""Graph's wire format, below the client's request loop: OData string literals, user path segments, the
sealed body that carries a secret, ``Retry-After``, and an error answer read and turned into the bot.errors
exception an operator reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot.errors import (
    EntraAuthError,
    EntraReauthRequiredError,
    GraphError,
    GraphNotFoundError,
    GraphPermissionError,
    GraphRejectedError,
    GraphThrottledError,
    GraphUnavailableError,
    MicrosoftError,
)

if TYPE_CHECKING:
    import httpx  # imported by the client's first request: see bot.clients.graph.client

_REDACTED = "[redacted]"


class _Sealed:
    """A JSON body holding a secret: serialized only at the moment it is sent; its repr hides it."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = body

    def __repr__(self) -> str:
        return "<sealed body>"

    def content(self) -> bytes:
        return json.dumps(self._body).encode()


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def _segment(id_or_upn: str) -> str:
    """A user id or UPN as one path segment (``#EXT#`` guests, ``/`` and ``?`` included)."""
    return quote(id_or_upn.strip(), safe="@")


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:  # the HTTP-date form
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(when.tzinfo)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _graph_error_body(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, request-id) of a Graph error answer (headers when the body is not Graph's)."""
    code = message = rid = None
    try:
        err = response.json().get("error")
    except (ValueError, AttributeError):
        err = None
    if isinstance(err, dict):
        code = str(err.get("code")) if err.get("code") else None
        message = str(err.get("message")) if err.get("message") else None
        inner = err.get("innerError") or err.get("innererror") or {}
        if isinstance(inner, dict) and inner.get("request-id"):
            rid = str(inner["request-id"])
    return code, message, rid or response.headers.get("request-id")


def _graph_error(response: httpx.Response, *, what: str, delegated: bool, client_request_id: str,
                 secret: str | None, retries: int, method: str = "GET") -> MicrosoftError:
    """The bot.errors exception for Graph's refusal to ``what`` (``secret`` scrubbed from Graph's message)."""
    code, message, rid = _graph_error_body(response)
    if secret and message:
        message = message.replace(secret, _REDACTED)
    status = response.status_code
    ms = f"{code}: {message}" if code and message else (code or message or f"HTTP {status}")
    fields: dict[str, Any] = {"code": code, "request_id": rid, "client_request_id": client_request_id,
                              "status": status}
    if status == 401:
        if delegated:
            return EntraReauthRequiredError(f"Microsoft Graph refused the agent's sign-in to {what} ({ms}); the "
                                            "agent must link their account again.", **fields)
        return EntraAuthError(f"Microsoft Graph refused the bot's app token to {what} ({ms}); check the app "
                              "registration's credentials and tenant.", **fields)
    if status == 403:
        who = "the signed-in agent's Entra role" if delegated else "the app's Graph permissions"
        return GraphPermissionError(f"Microsoft Graph refused to {what}: {who} does not allow it ({ms}).",
                                    **fields)
    if status == 404:
        return GraphNotFoundError(f"Microsoft Graph could not {what}: it does not exist in Entra ID ({ms}).",
                                  **fields)
    if status == 429:
        return GraphThrottledError(f"Microsoft Graph is throttling the bot and still refused to {what} after "
                                   f"{retries} retries; try again later.",
                                   retry_after=_retry_after(response), **fields)
    if status >= 500:
        unknown = "" if method == "GET" or status == 503 else \
            " (the outcome is unknown: check before repeating it)"
        return GraphUnavailableError(f"Microsoft Graph is unavailable and could not {what} after {retries} "
                                     f"retries ({ms}){unknown}.", retry_after=_retry_after(response), **fields)
    if 400 <= status < 500:
        return GraphRejectedError(f"Microsoft Graph refused to {what}: {message or ms}"
                                  f"{'' if (message or ms).endswith('.') else '.'}", **fields)
    return GraphError(f"Microsoft Graph answered HTTP {status} when asked to {what}, which the bot does not "
                      "expect.", **fields)
