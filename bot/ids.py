"""Every id Slack and the code must agree on, as Enums: commands, action ids, callback ids, block ids.

manifest.yml declares the same commands and events; a test keeps the two in step.
"""

from __future__ import annotations

import secrets
from enum import StrEnum

#: The bot scopes the app needs, exactly what manifest.yml asks for (a test keeps the two equal); ``resetbot
#: doctor`` compares them with what the installed token was granted.
BOT_SCOPES: tuple[str, ...] = ("chat:write", "commands", "im:write", "users:read", "users:read.email",
                               "usergroups:read")


class Command(StrEnum):
    RESET = "/reset"
    RESET_STATUS = "/reset-status"
    RESETBOT = "/resetbot"


class Event(StrEnum):
    APP_HOME_OPENED = "app_home_opened"


class ResetbotSubcommand(StrEnum):
    """``/resetbot <subcommand>``."""

    LOGIN = "login"
    LOGOUT = "logout"
    WHOAMI = "whoami"
    HEALTH = "health"
    HELP = "help"


class Action(StrEnum):
    """action_id of every button; the value carries the request id."""

    APPROVE = "request_approve"
    DENY = "request_deny"
    CANCEL = "request_cancel"
    CONFIRM_YES = "target_confirm_yes"
    CONFIRM_NO = "target_confirm_no"
    REVEAL = "reset_reveal"
    NOT_ME = "reset_not_me"
    #: Start a caller verification with one method (Slack wants each action_id once per block); the value is
    #: ``<request id>|<method>``.
    VERIFY_SLACK_CODE = "caller_verify_slack_code"
    VERIFY_SLACK_CONFIRM = "caller_verify_slack_confirm"
    VERIFY_DUO_PUSH = "caller_verify_duo_push"
    VERIFY_CALLBACK = "caller_verify_callback"
    ENTER_CODE = "caller_enter_code"
    #: On the security channel's containment alert: reset the password again to one nobody is shown.
    SCRAMBLE = "reset_scramble"


class Callback(StrEnum):
    """callback_id of every modal."""

    DENY_REASON = "deny_reason"
    REVEAL = "reveal_password"
    VERIFY_CODE = "verify_code"
    VERIFY_CALLBACK = "verify_callback"


class Block(StrEnum):
    """block_id (and input action_id) of modal inputs and of blocks that are looked up again."""

    DENY_REASON = "deny_reason"
    DENY_REASON_INPUT = "deny_reason_input"
    REQUEST_ACTIONS = "request_actions"
    CONFIRM_ACTIONS = "confirm_actions"
    REVEAL_ACTIONS = "reveal_actions"
    NOT_ME_ACTIONS = "not_me_actions"
    VERIFY_ACTIONS = "verify_actions"
    CODE_ACTIONS = "code_actions"
    VERIFY_CODE = "verify_code"
    VERIFY_CODE_INPUT = "verify_code_input"
    VERIFY_CALLBACK = "verify_callback"
    VERIFY_CALLBACK_INPUT = "verify_callback_input"
    SCRAMBLE_ACTIONS = "scramble_actions"


def new_correlation_id() -> str:
    """The id of one story (a Slack request, a scheduled recovery): quoted to people, logged, audited."""
    return "c-" + secrets.token_hex(5)
