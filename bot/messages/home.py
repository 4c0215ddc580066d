"""App Home: the approver's and requester's lists, and the health panel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain.health_state import HealthReport
from bot.messages.format import Blocks
from bot.messages.health import health_home
from bot.messages.status import request_list
from bot.models import ResetRequest


def home_view(*, pending_for_me: Sequence[ResetRequest], mine: Sequence[ResetRequest],
              health: HealthReport | None = None) -> dict[str, Any]:
    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "resetbot"}},
        section(request_list("Waiting for my approval", pending_for_me)),
        {"type": "divider"},
        section(request_list("My recent requests", mine)),
    ]
    if health is not None:
        blocks += [{"type": "divider"}, section(health_home(health))]
    return {"type": "home", "blocks": blocks}
