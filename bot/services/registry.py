"""The services a running bot has, in one place for handlers to reach through bolt's context."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.followups import FollowUpService
from bot.services.health import HealthService
from bot.services.links import LinkService
from bot.services.outbox import Outbox
from bot.services.requests import RequestService
from bot.services.reset import ResetService


@dataclass(frozen=True)
class Services:
    requests: RequestService
    reset: ResetService
    links: LinkService
    followups: FollowUpService
    health: HealthService
    outbox: Outbox
