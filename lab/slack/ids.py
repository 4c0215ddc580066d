"""The lab workspace's ids: its team, app and bot, and how people, DMs, channels and groups are named.

Ids are stable across runs so transcripts are readable: people are ``U`` + their key upper-cased and
zero-padded (``alice`` → ``U00ALICE``), their DMs with the bot ``D`` + the same suffix, channels
``C0HELPDESK``, ``C0SECURITY``, ``C000000OPS``, user groups ``S00HELPDESK`` / ``S0APPROVERS``; the bot is
user ``U0RESETBOT``, bot ``B0RESETBOT``, app ``A0RESETBOT`` in team ``T0RESETLAB``.
"""

from __future__ import annotations

import secrets
import string

TEAM_ID = "T0RESETLAB"
TEAM_DOMAIN = "resetbot-lab"
TEAM_NAME = "resetbot lab"
ENTERPRISE_ID: str | None = None
APP_ID = "A0RESETBOT"
BOT_ID = "B0RESETBOT"
BOT_USER_ID = "U0RESETBOT"
BOT_NAME = "resetbot"
#: The sender of Slack's own notices (e.g. "/reset failed with the error dispatch_failed").
SLACKBOT_ID = "USLACKBOT"
CHANNEL_NAMES: tuple[str, ...] = ("helpdesk", "security", "ops")
USERGROUP_NAMES: tuple[str, ...] = ("helpdesk", "approvers")
#: Workspace admins (``is_admin``): the people who created the lab's user groups.
WORKSPACE_ADMINS: tuple[str, ...] = ("ivan",)
#: Who may create and change user groups (Slack: Workspace settings > Permissions > User Groups). Slack's default
#: lets every member (guests excepted); an admin may restrict it to admins (and owners).
USERGROUP_EDITORS: tuple[str, ...] = ("everyone", "admins")


def _suffix(key: str, width: int) -> str:
    clean = "".join(c for c in key.upper() if c in string.ascii_uppercase + string.digits)
    return clean.rjust(width, "0")


def user_id_for(key: str) -> str:
    return "U" + _suffix(key, 7)


def channel_id_for(name: str) -> str:
    return "C" + _suffix(name, 9)


def usergroup_id_for(name: str) -> str:
    return "S" + _suffix(name, 10)


def dm_id_for(user_id: str) -> str:
    return "D" + user_id[1:]


def random_id(prefix: str, length: int = 10) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))
