"""``/resetbot <subcommand>``."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond

from bot import messages
from bot.ids import ResetbotSubcommand
from handlers.context import services_of
from handlers.link_commands import LINK_SUBCOMMANDS, handle_link_command, link_usage


def _words(command: dict[str, Any]) -> tuple[str, list[str]]:
    words = (command.get("text") or "").strip().split()
    return (words[0].lower() if words else ResetbotSubcommand.HELP.value), words[1:]


def resetbot_answer(body: dict[str, Any]) -> dict[str, Any] | None:
    """Help, usage lines and refusals are answered in the ack itself (Slack shows it only to the person who typed
    the command): they need nothing but the text typed. None for what needs work (health, login, logout,
    whoami), which acks empty and answers privately after (``handle_resetbot``)."""
    sub, args = _words(body)
    if sub == ResetbotSubcommand.HELP:
        return {"text": messages.commands.help_text()}
    if sub == ResetbotSubcommand.HEALTH:
        return None
    if sub in LINK_SUBCOMMANDS:
        usage = link_usage(ResetbotSubcommand(sub), args)
        return None if usage is None else {"text": usage}
    if sub in set(ResetbotSubcommand):
        return {"text": messages.commands.not_available_yet(sub)}
    return {"text": messages.commands.unknown_subcommand(sub)}


def handle_resetbot(ack: Ack, command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    """The subcommands ``resetbot_answer`` left to the work pool: health (read from the database, which may be
    busy) and linking."""
    sub, args = _words(command)
    if sub == ResetbotSubcommand.HEALTH:
        ack()
        respond(text=messages.health.health_report(services_of(context).health.report()),
                response_type="ephemeral")
        return
    if sub in LINK_SUBCOMMANDS:
        handle_link_command(ResetbotSubcommand(sub), args, ack, command, context, respond)
