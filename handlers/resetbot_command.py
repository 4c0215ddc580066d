"""``/resetbot <subcommand>``."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack

from bot import messages
from bot.ids import ResetbotSubcommand


def handle_resetbot(ack: Ack, command: dict[str, Any]) -> None:
    """Answers in the ack itself: Slack shows it only to the person who typed the command."""
    word = (command.get("text") or "").strip().split(maxsplit=1)
    sub = word[0].lower() if word else ResetbotSubcommand.HELP.value
    if sub == ResetbotSubcommand.HELP:
        ack(text=messages.help_text())
        return
    if sub in set(ResetbotSubcommand):
        ack(text=messages.not_available_yet(sub))
        return
    ack(text=messages.unknown_subcommand(sub))
