"""Slack listeners. Each parses, acks at once, calls a service and renders with bot.messages.

The route tables below are the one list of what the app listens to; ``register`` wires them, and a test
compares them with manifest.yml so that Slack and the code never disagree about a command or an event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.ids import Action, Callback, Command, Event
from bot.services.registry import Services
from handlers.context import middleware
from handlers.errors import handle_error
from handlers.home import handle_home_opened
from handlers.request_actions import (
    handle_approve,
    handle_cancel,
    handle_confirm,
    handle_deny_click,
    handle_deny_submit,
    handle_not_me,
    handle_reveal,
)
from handlers.reset_command import handle_reset, handle_reset_status
from handlers.resetbot_command import handle_resetbot

COMMAND_ROUTES: dict[Command, Callable[..., Any]] = {
    Command.RESET: handle_reset,
    Command.RESET_STATUS: handle_reset_status,
    Command.RESETBOT: handle_resetbot,
}
ACTION_ROUTES: dict[Action, Callable[..., Any]] = {
    Action.APPROVE: handle_approve,
    Action.DENY: handle_deny_click,
    Action.CANCEL: handle_cancel,
    Action.CONFIRM_YES: handle_confirm(yes=True),
    Action.CONFIRM_NO: handle_confirm(yes=False),
    Action.REVEAL: handle_reveal,
    Action.NOT_ME: handle_not_me,
}
VIEW_ROUTES: dict[Callback, Callable[..., Any]] = {
    Callback.DENY_REASON: handle_deny_submit,
}
EVENT_ROUTES: dict[Event, Callable[..., Any]] = {
    Event.APP_HOME_OPENED: handle_home_opened,
}


def register(app: App, services: Services) -> None:
    app.use(middleware(services))
    app.error(handle_error)
    for command, listener in COMMAND_ROUTES.items():
        app.command(str(command))(listener)
    for action, listener in ACTION_ROUTES.items():
        app.action(str(action))(listener)
    for callback, listener in VIEW_ROUTES.items():
        app.view(str(callback))(listener)
    for event, listener in EVENT_ROUTES.items():
        app.event(str(event))(listener)
