"""The product's exceptions. Clients translate library errors into these; the one error handler turns
each into a sentence for the user (from bot.messages) with a correlation id."""

from __future__ import annotations

from typing import Literal


class ResetbotError(Exception):
    """Base class: something the user or operator can be told about in one sentence."""


class ConfigError(ResetbotError):
    """Settings are missing or still hold a placeholder; the message lists each one."""


class RequestNotFoundError(ResetbotError):
    """No reset request has this id (a stale button, a mistyped id in ``/reset-status``)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"There is no reset request {request_id}.")
        self.request_id = request_id


class DatabaseUnavailableError(ResetbotError):
    """The database could not be reached or read (down, wrong URL, refused login, not a resetbot database).
    The message names the database with its password hidden, never the password."""


class SchemaAheadError(ResetbotError):
    """The database was migrated by a newer version of resetbot: this code does not know its revision, so it
    must not use (or migrate) it."""


#: What went wrong with Active Directory, for code that must say it without repeating the message (health pings).
DirectoryFault = Literal["unreachable", "bind_refused", "base_unreadable", "failed"]


class DirectoryUnavailableError(ResetbotError):
    """Active Directory could not be reached or refused the bot's own bind (not a verdict about a user).
    ``fault`` names the kind of failure; the message, which may quote the DC, is for logs and the error handler."""

    def __init__(self, message: str, *, fault: DirectoryFault = "failed") -> None:
        super().__init__(message)
        self.fault: DirectoryFault = fault


class SlackUnavailableError(ResetbotError):
    """Slack's Web API refused or failed a call the bot needed (not a person's mistake). ``code`` is Slack's error
    code (``ratelimited``, ``channel_not_found``, ...) or ``unreachable``: the outbox decides from it whether a
    post is worth trying again."""

    def __init__(self, message: str, *, code: str = "unreachable") -> None:
        super().__init__(message)
        self.code = code


# --- Entra ID and Microsoft Graph (bot/clients/entra_auth/, bot/clients/graph/) -------------------------------
class MicrosoftError(ResetbotError):
    """Entra ID or Microsoft Graph failed a call. The message is one sentence for the user or operator; the
    fields carry what support needs to trace it: Microsoft's ``code`` (a Graph code or ``AADSTS…``), the
    ``request_id`` Graph answered with (or the token endpoint's correlation id), the ``client_request_id``
    the bot sent, the HTTP ``status`` and the ``retry_after`` Microsoft asked for, in seconds.
    Never holds a password, token, secret or token cache."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.status = status
        self.retry_after = retry_after


class EntraAuthError(MicrosoftError):
    """Entra ID refused the bot's own credentials (client id, secret, certificate, tenant): a setting is
    wrong, and the message names it."""


class EntraUnavailableError(MicrosoftError):
    """Entra ID's token endpoint could not be reached or answered 5xx; trying again later may work."""


class EntraReauthRequiredError(MicrosoftError):
    """An agent's linked sign-in can no longer be used silently (refresh token gone, revoked or expired, or
    the stored cache unreadable): the agent must sign in again."""


class DeviceFlowError(MicrosoftError):
    """A sign-in (device code or browser) did not complete; ``reason`` says why (declined, expired, timeout,
    scope, wrong_tenant...)."""

    def __init__(self, message: str, *, reason: str, code: str | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.reason = reason


class DeviceFlowDeclinedError(DeviceFlowError):
    """The person refused the sign-in on Microsoft's page."""


class DeviceFlowExpiredError(DeviceFlowError):
    """The sign-in code ran out (Microsoft's expiry, or the bot stopped waiting) before anyone used it."""


class SignInBlockedError(DeviceFlowError):
    """Entra refused to issue a token for the completed sign-in because Conditional Access blocks it
    (AADSTS53003 and its kin): for device code, usually the "authentication flows" condition."""


class GraphError(MicrosoftError):
    """A Microsoft Graph call failed in a way none of the subclasses describes (an unexpected answer)."""


class GraphPermissionError(GraphError):
    """Graph answered 403 (``Authorization_RequestDenied``): the app's permissions or the signed-in agent's
    Entra role do not allow this call on this target."""


class GraphNotFoundError(GraphError):
    """Graph answered 404: the user (or operation) does not exist in Entra ID."""


class GraphThrottledError(GraphError):
    """Graph kept answering 429 after the bounded retries; ``retry_after`` is the last wait it asked for."""


class GraphUnavailableError(GraphError):
    """Graph could not be reached or kept answering 5xx after the bounded retries."""


class GraphRejectedError(GraphError):
    """Graph refused the request as such (400 and other 4xx), e.g. a password Entra Password Protection
    blocks; ``code`` and the message carry Microsoft's reason."""


# --- linked Entra accounts (bot/services/links.py) -------------------------------------------------------------
class NotLinkedError(ResetbotError):
    """The agent (or, in service mode, the service identity) has no linked Entra account; the message says who
    must run ``/resetbot login``."""

    def __init__(self, message: str, *, slack_user: str, service: bool = False) -> None:
        super().__init__(message)
        self.slack_user = slack_user
        self.service = service


class DuoUnavailableError(ResetbotError):
    """Duo's Auth API could not be reached, refused the integration's credentials, or answered an error. The
    message names what failed, never the integration's secret key."""
