"""Slack listeners. Each parses, acks at once, calls a service and renders with bot.messages.

``ROUTES`` is the one table of what the app listens to; ``register`` wires it, and a test compares it
with manifest.yml so that Slack and the code never disagree about a command or an event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.ids import Command
from handlers.resetbot_command import handle_resetbot

#: Slash commands the app answers, with their listener.
COMMAND_ROUTES: dict[Command, Callable[..., Any]] = {
    Command.RESETBOT: handle_resetbot,
}


def register(app: App) -> None:
    for command, listener in COMMAND_ROUTES.items():
        app.command(str(command))(listener)
