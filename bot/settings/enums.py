"""The settings' closed choices, each a ``StrEnum`` of the values an operator may write for it."""

from __future__ import annotations

from enum import StrEnum


class ApproverSource(StrEnum):
    """Who may approve: the target's directory manager, members of the approver group, or either."""

    MANAGER = "manager"
    GROUP = "group"
    MANAGER_OR_GROUP = "manager_or_group"


class TargetConfirmation(StrEnum):
    """Whether the target is asked "Did you ask helpdesk for this?" by DM, and whether approval waits for it."""

    OFF = "off"
    ASK = "ask"
    REQUIRED = "required"


class VerifyMethod(StrEnum):
    """How a caller may be verified (``RESETBOT_VERIFY_METHODS``, ``--verify``); also what the database stores."""

    SLACK_CODE = "slack-code"
    SLACK_CONFIRM = "slack-confirm"
    DUO_PUSH = "duo-push"
    CALLBACK = "callback"


class Delivery(StrEnum):
    """Who sees the temporary password: the requesting agent (who reads it to the caller) or only the target."""

    AGENT = "agent"
    TARGET = "target"


class SlackMode(StrEnum):
    """How Slack reaches the bot: Socket Mode (the bot connects out) or signed HTTP requests to a public URL."""

    SOCKET = "socket"
    HTTP = "http"


class ResetIdentity(StrEnum):
    """Whose delegated Entra token makes a reset: the requesting agent's own, or one linked service identity."""

    AGENT = "agent"
    SERVICE = "service"


class SignIn(StrEnum):
    """How agents link their Entra account: the device-code flow, the browser (authorization code with PKCE, for
    tenants whose Conditional Access blocks device code), or both (``/resetbot login`` then uses device code)."""

    DEVICE = "device"
    BROWSER = "browser"
    BOTH = "both"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
