"""What every listener gets through bolt's context: the services and a correlation id for this request.

The correlation id is made once per incoming Slack request, logged with every line about it, written into
audit events, and quoted in any error sentence the person sees, so support can find the one story. The
middleware binds it for logging (bot.logs) around the rest of the request, listeners included: the app's
listener executor carries it into the thread a listener runs in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltContext

from bot.logs import bind_correlation, unbind_correlation
from bot.services.registry import Services

SERVICES_KEY = "resetbot_services"
CORRELATION_KEY = "correlation_id"


def new_correlation_id() -> str:
    return "c-" + secrets.token_hex(5)


def middleware(services: Services) -> Callable[..., Any]:
    def inject(context: BoltContext, next: Callable[[], Any]) -> Any:
        context[SERVICES_KEY] = services
        cid = context[CORRELATION_KEY] = new_correlation_id()
        token = bind_correlation(cid)
        try:
            return next()
        finally:
            unbind_correlation(token)

    return inject


def services_of(context: BoltContext) -> Services:
    services = context[SERVICES_KEY]
    assert isinstance(services, Services)
    return services


def correlation_of(context: BoltContext) -> str:
    return str(context.get(CORRELATION_KEY) or new_correlation_id())
