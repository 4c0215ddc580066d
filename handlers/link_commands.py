"""``/resetbot login [--browser] | logout | whoami``: link, show or remove the agent's own Entra account.

Each acks at once with nothing (Slack's 3 s are hard; asking Entra for a sign-in code or reading roles may take
longer), then answers privately through the response URL. The sign-in code itself goes by DM, never here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from bot import messages
from bot.ids import ResetbotSubcommand
from handlers.context import correlation_of, services_of

LINK_SUBCOMMANDS = frozenset({ResetbotSubcommand.LOGIN, ResetbotSubcommand.LOGOUT, ResetbotSubcommand.WHOAMI})
SERVICE_FLAG = "--service"
BROWSER_FLAG = "--browser"


def link_usage(sub: ResetbotSubcommand, args: Sequence[str]) -> str | None:
    """The usage line for options ``sub`` does not take (answered in the ack); None when they are fine."""
    options = [a.lower() for a in args]
    allowed = {ResetbotSubcommand.WHOAMI: set(), ResetbotSubcommand.LOGIN: {SERVICE_FLAG, BROWSER_FLAG}}.get(
        sub, {SERVICE_FLAG})
    if any(o not in allowed for o in options) or len(set(options)) != len(options):
        return messages.links.link_usage(sub)
    return None


def handle_link_command(sub: ResetbotSubcommand, args: Sequence[str], ack: Ack, command: dict[str, Any],
                        context: BoltContext, respond: Respond) -> None:
    usage = link_usage(sub, args)
    if usage is not None:
        ack(text=usage)
        return
    ack()
    options = [a.lower() for a in args]
    links = services_of(context).links
    user, cid, service = command["user_id"], correlation_of(context), SERVICE_FLAG in options
    if sub == ResetbotSubcommand.LOGIN:
        sentence = links.login(slack_user=user, correlation_id=cid, service=service, browser=BROWSER_FLAG in options)
    elif sub == ResetbotSubcommand.LOGOUT:
        sentence = links.logout(slack_user=user, correlation_id=cid, service=service)
    else:
        sentence = links.whoami(slack_user=user)
    respond(text=sentence, response_type="ephemeral")
