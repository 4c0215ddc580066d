"""What every listener gets through bolt's context: the services and a correlation id for this request.

The correlation id is made once per incoming Slack request, logged with every line about it, written into
audit events, and quoted in any error sentence the person sees, so support can find the one story.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import BoltContext

from bot.ids import new_correlation_id
from bot.services.registry import Services

SERVICES_KEY = "resetbot_services"
CORRELATION_KEY = "correlation_id"


def middleware(services: Services) -> Callable[..., Any]:
    def inject(context: BoltContext, next: Callable[[], Any]) -> Any:
        context[SERVICES_KEY] = services
        context[CORRELATION_KEY] = new_correlation_id()
        return next()

    return inject


def services_of(context: BoltContext) -> Services:
    services = context[SERVICES_KEY]
    assert isinstance(services, Services)
    return services


def correlation_of(context: BoltContext) -> str:
    return str(context.get(CORRELATION_KEY) or new_correlation_id())
