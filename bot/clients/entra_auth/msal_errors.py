"""msal's answers and exceptions as bot.errors, where both flows read them alike: an error dict's AADSTS code and
correlation id, a raised 5xx or network failure, an authority whose metadata cannot be read. Each flow maps
its own refusals (:mod:`~bot.clients.entra_auth.app_tokens`, :mod:`~bot.clients.entra_auth.delegated_tokens`).

msal (with requests, about 90 ms to import) is imported when the bot first asks Entra ID for something, never at
start: ``resetbot run`` connects to Slack first. So no module of this package imports msal or requests at its top
(but for the type checker): the functions that build msal applications import it, and an
``except`` names what msal raises through :func:`msal_failures`, which is evaluated only when an exception is
being matched, after msal has been imported by the call that raised it.
"""

from __future__ import annotations

from typing import Any

from bot.clients.entra_auth.authority import _S_AUTHORITY
from bot.errors import EntraAuthError, EntraUnavailableError

_UNAVAILABLE_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


def msal_failures() -> tuple[type[Exception], ...]:
    """What msal raises when Entra ID answers 5xx or cannot be reached: ``MsalServiceError`` and requests' own
    ``RequestException``, for ``except msal_failures() as e`` (see the module doc)."""
    import requests  # noqa: PLC0415 (lazy: see the module doc)
    from msal.exceptions import MsalServiceError  # noqa: PLC0415
    return (MsalServiceError, requests.RequestException)


def _aadsts(result: dict[str, Any]) -> int | None:
    codes = result.get("error_codes") or []
    return int(codes[0]) if codes and str(codes[0]).isdigit() else None


def _fields(result: dict[str, Any]) -> dict[str, Any]:
    n = _aadsts(result)
    return {"code": f"AADSTS{n}" if n is not None else str(result.get("error") or "") or None,
            "request_id": result.get("correlation_id") or result.get("trace_id")}


def _unavailable_from(exc: BaseException, what: str) -> EntraUnavailableError:
    """A raised msal/requests failure as EntraUnavailableError (the exception's text may name a URL, never a
    secret; it is not repeated anyway)."""
    from msal.exceptions import MsalServiceError  # noqa: PLC0415 (lazy: see the module doc)
    if isinstance(exc, MsalServiceError):
        status = str(exc).removeprefix("HTTP Error: ").strip()
        detail = f"HTTP {status}" if status.isdigit() else type(exc).__name__
        return EntraUnavailableError(f"Entra ID's token service is unavailable ({detail}) while {what}; "
                                     "the bot will try again later.",
                                     status=int(status) if status.isdigit() else None)
    return EntraUnavailableError(f"Entra ID could not be reached ({type(exc).__name__}) while {what}; check the "
                                 "network path to the authority and try again.")


def _unreadable_authority(authority: str) -> EntraAuthError:
    """msal's ValueError while it builds an application: the authority's OpenID configuration was unreadable."""
    return EntraAuthError(f"Entra ID did not accept the authority {authority} (its OpenID configuration could not "
                          f"be read): check {_S_AUTHORITY}.")
