"""App Home: my pending approvals, my recent requests, and writeback health."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext

from handlers.context import services_of


def handle_home_opened(event: dict[str, Any], context: BoltContext) -> None:
    if event.get("tab", "home") == "home":
        services = services_of(context)
        services.requests.home(user=event["user"], health=services.health.report())
