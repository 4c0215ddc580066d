"""What every listener gets through bolt's context: the services and a correlation id for this request.

The correlation id is made once per incoming Slack request, logged with every line about it, written into
audit events, and quoted in any error sentence the person sees, so support can find the one story.

``CorrelatedApp`` makes it when bolt dispatches the request and binds it for logging (bot.logs) for the whole
dispatch. Not in a middleware: bolt runs the listener *after* the middleware chain has returned (``next()`` only
marks the chain as continued), so a binding a middleware undid would be gone by then. The listener acks during
the dispatch and hands its work to the work pool (handlers/work.py), which runs it in a copy of this context: its
log lines, the error handler's and the reset's after an approval carry the same id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse

from bot.ids import new_correlation_id
from bot.logs import bind_correlation, unbind_correlation
from bot.services.registry import Services

SERVICES_KEY = "resetbot_services"
CORRELATION_KEY = "correlation_id"
#: HTTP mode: the request's replay check across replicas (``ReplayGuard.first_sight`` of its signature), put in its
#: context by ``bot.app.refuse_replays`` and run by the work pool before any of its work (``handlers.work``).
REPLAY_CHECK_KEY = "resetbot_replay_check"


class CorrelatedApp(App):
    """A bolt App whose every dispatched request has its correlation id, in its context and bound for logging."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        cid = req.context.get(CORRELATION_KEY) or new_correlation_id()
        req.context[CORRELATION_KEY] = cid
        token = bind_correlation(cid)
        try:
            return super().dispatch(req)
        finally:
            unbind_correlation(token)


def middleware(services: Services) -> Callable[..., Any]:
    def inject(context: BoltContext, next: Callable[[], Any]) -> Any:
        context[SERVICES_KEY] = services
        if not context.get(CORRELATION_KEY):
            context[CORRELATION_KEY] = new_correlation_id()
        return next()

    return inject


def services_of(context: BoltContext) -> Services:
    services = context[SERVICES_KEY]
    assert isinstance(services, Services)
    return services


def correlation_of(context: BoltContext) -> str:
    return str(context.get(CORRELATION_KEY) or new_correlation_id())
