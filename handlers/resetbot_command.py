"""``/resetbot <subcommand>``."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from bot import messages
from bot.ids import ResetbotSubcommand
from handlers.context import services_of
from handlers.link_commands import LINK_SUBCOMMANDS, handle_link_command


def handle_resetbot(ack: Ack, command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    """Help and refusals are answered in the ack itself (Slack shows it only to the person who typed the
    command), and so is health (read from the database: quick); login, logout and whoami ack at once and answer
    privately after."""
    words = (command.get("text") or "").strip().split()
    sub = words[0].lower() if words else ResetbotSubcommand.HELP.value
    if sub == ResetbotSubcommand.HELP:
        ack(text=messages.commands.help_text())
        return
    if sub == ResetbotSubcommand.HEALTH:
        ack(text=messages.health.health_report(services_of(context).health.report()))
        return
    if sub in LINK_SUBCOMMANDS:
        handle_link_command(ResetbotSubcommand(sub), words[1:], ack, command, context, respond)
        return
    if sub in set(ResetbotSubcommand):
        ack(text=messages.commands.not_available_yet(sub))
        return
    ack(text=messages.commands.unknown_subcommand(sub))
