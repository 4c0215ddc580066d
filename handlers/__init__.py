"""Slack listeners. Each parses, acks at once, calls a service and renders with bot.messages.

The route tables below are the one list of what the app listens to; ``register`` wires them, and a test
compares them with manifest.yml so that Slack and the code never disagree about a command or an event.
``register`` puts every listener behind the ack path of handlers/work.py: acked at once, its work in a bounded
pool, in the lane ``LANES`` names (``Lane.WORK`` when it names none), with the answers ``ACK_ANSWERS`` can give in
the ack itself.
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
    deny_reason_answer,
    handle_approve,
    handle_cancel,
    handle_confirm,
    handle_deny_click,
    handle_deny_submit,
    handle_not_me,
    handle_reveal,
    handle_scramble,
)
from handlers.reset_command import handle_reset, handle_reset_status
from handlers.resetbot_command import handle_resetbot, resetbot_answer
from handlers.verify_actions import (
    callback_answer,
    handle_callback_submit,
    handle_code_submit,
    handle_enter_code,
    handle_verify,
)
from handlers.work import AckAnswer, Lane, WorkPool, on_ack_path

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
    Action.VERIFY_SLACK_CODE: handle_verify,
    Action.VERIFY_SLACK_CONFIRM: handle_verify,
    Action.VERIFY_DUO_PUSH: handle_verify,
    Action.VERIFY_CALLBACK: handle_verify,
    Action.ENTER_CODE: handle_enter_code,
    Action.SCRAMBLE: handle_scramble,
}
VIEW_ROUTES: dict[Callback, Callable[..., Any]] = {
    Callback.DENY_REASON: handle_deny_submit,
    Callback.VERIFY_CODE: handle_code_submit,
    Callback.VERIFY_CALLBACK: handle_callback_submit,
}
EVENT_ROUTES: dict[Event, Callable[..., Any]] = {
    Event.APP_HOME_OPENED: handle_home_opened,
}
#: Work that is not ``Lane.WORK``: modals (their trigger_id lasts 3 s), decisions that may start a reset or stop
#: one (a Deny's reason, a Cancel), and the target's "No" and "This wasn't me": ``Lane.WORK`` also carries
#: ``/reset-status``, which any workspace member may send, and every ``/reset``, so a flood of them must never
#: hold back the person who stops a reset while a second approver's Approve goes ahead in its own lane.
LANES: dict[Command | Action | Callback | Event, Lane] = {
    Action.DENY: Lane.MODAL,
    Action.REVEAL: Lane.MODAL,
    Action.APPROVE: Lane.DECISION,
    Action.CONFIRM_YES: Lane.DECISION,
    Action.CONFIRM_NO: Lane.DECISION,
    Action.NOT_ME: Lane.DECISION,
    Action.VERIFY_SLACK_CODE: Lane.MODAL,
    Action.VERIFY_SLACK_CONFIRM: Lane.MODAL,
    Action.VERIFY_DUO_PUSH: Lane.MODAL,
    Action.VERIFY_CALLBACK: Lane.MODAL,
    Action.ENTER_CODE: Lane.MODAL,
    Callback.VERIFY_CODE: Lane.DECISION,
    Callback.VERIFY_CALLBACK: Lane.DECISION,
    Action.SCRAMBLE: Lane.DECISION,
    Action.CANCEL: Lane.DECISION,
    Callback.DENY_REASON: Lane.DECISION,
}
#: Answers given in the ack itself, from the request's text alone (no I/O): no work is queued for them.
ACK_ANSWERS: dict[Command | Action | Callback | Event, AckAnswer] = {
    Command.RESETBOT: resetbot_answer,
    Callback.DENY_REASON: deny_reason_answer,
    Callback.VERIFY_CALLBACK: callback_answer,
}


def register(app: App, services: Services, pool: WorkPool) -> None:
    app.use(middleware(services))
    app.error(handle_error)

    def acked(route: Command | Action | Callback | Event, listener: Callable[..., Any]) -> Callable[..., None]:
        return on_ack_path(listener, LANES.get(route, Lane.WORK), pool, answer=ACK_ANSWERS.get(route))

    for command, listener in COMMAND_ROUTES.items():
        app.command(str(command))(acked(command, listener))
    for action, listener in ACTION_ROUTES.items():
        app.action(str(action))(acked(action, listener))
    for callback, listener in VIEW_ROUTES.items():
        app.view(str(callback))(acked(callback, listener))
    for event, listener in EVENT_ROUTES.items():
        app.event(str(event))(acked(event, listener))
