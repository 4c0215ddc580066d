"""Every id Slack and the code must agree on, as Enums: commands, action ids, callback ids, block ids.

manifest.yml declares the same commands and events; a test keeps the two in step.
"""

from __future__ import annotations

from enum import StrEnum


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
