"""Reset requests and approvals: the product's rules from ``/reset`` to ``approved`` (spec sections 1-3).

Every method gathers facts (Slack, Entra, AD, the database), asks the pure rules in ``bot.domain.rules``,
and acts: one compare-and-set per state change (so double clicks, Slack redeliveries and replicas produce one
transition), one audit event per transition and per refusal, and the thread and request message updated to
match. Methods return the sentence to show privately to the person who acted, or None when there is none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.clients.directory import Directory
from bot.clients.duo import DuoAuth
from bot.clients.slack_notify import Notifier
from bot.db import SessionFactory
from bot.domain.health_state import HealthReport
from bot.domain.limits import LimitRules
from bot.models import utcnow
from bot.services.debounce import Debounce
from bot.services.request_decisions import SYSTEM
from bot.services.request_intake import RequestIntake
from bot.services.request_verification import RequestVerification
from bot.services.resolve import TargetResolver
from bot.services.sealing import Sealer
from bot.settings import ApproverSource, Delivery, Settings, TargetConfirmation, VerifyMethod

__all__ = ["SYSTEM", "Readiness", "RequestRules", "RequestService"]


#: App Home refreshes for one person asked within this many seconds are drawn once, after the last: at most 30
#: publishes a minute for a person however busy the helpdesk is (a requester and a manager in a burst stay within
#: Slack's Tier 4, about 100 a minute), and a change shows within two seconds.
HOME_REFRESH_DELAY_S = 2.0


class Readiness(Protocol):
    """``LinkService.readiness``: None when the acting identity may make this reset (``tap``: this Temporary Access
    Pass; ``revoke_sessions``: and then sign the target out) of a target holding ``target_roles``, else the sentence
    saying why not."""

    def __call__(self, requester: str, target_roles: Sequence[str], /, *, tap: bool = False,
                 revoke_sessions: bool = False) -> str | None: ...


@dataclass(frozen=True)
class RequestRules:
    """The part of the settings these rules read, so tests can build them without a whole Settings."""

    agents_group: str
    approvers_group: str | None
    approver_source: ApproverSource
    ttl: timedelta
    target_confirmation: TargetConfirmation
    protected_group_dns: Sequence[str]
    protected_allowed: Sequence[str]
    requests_channel: str | None
    security_channel: str | None
    #: The abuse limits (``RESETBOT_LIMIT_*``).
    limits: LimitRules = field(default_factory=LimitRules)
    verify_required: bool = False
    verify_methods: Sequence[VerifyMethod] = ()
    delivery: Delivery = Delivery.AGENT

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestRules:
        return cls(
            agents_group=settings.agents_group,
            approvers_group=settings.approvers_group or None,
            approver_source=settings.approver_source,
            ttl=timedelta(minutes=settings.approval_ttl_minutes),
            target_confirmation=settings.target_confirmation,
            protected_group_dns=settings.protected_group_dns(),
            protected_allowed=settings.protected_allowed,
            requests_channel=settings.requests_channel,
            security_channel=settings.security_channel,
            limits=LimitRules(agent_per_hour=settings.limit_agent_per_hour,
                              repeat_hours=settings.limit_repeat_hours,
                              team_per_hour=settings.limit_team_per_hour),
            verify_required=settings.verify_required,
            verify_methods=tuple(settings.verify_methods),
            delivery=settings.delivery,
        )


@dataclass
class RequestService(RequestIntake, RequestVerification):
    """The request service: creating (``RequestIntake``), deciding (``RequestDecisions``) and looking at
    (``RequestViews``) requests, each in its module; this class holds what they share, its fields."""

    begin: SessionFactory
    notifier: Notifier
    resolver: TargetResolver
    directory: Directory
    rules: RequestRules
    clock: Callable[[], datetime] = field(default=utcnow)
    #: What happens once a request is approved (the reset service's ``perform``); None stops at approved.
    after_approval: Callable[..., None] | None = None
    #: Whether the requester's hands can make this reset (linked sign-in, strong enough Entra role for a target
    #: with these roles, for a password or a TAP): None, or the sentence saying why not. Asked before anyone is
    #: asked to approve.
    readiness: Readiness | None = None
    #: The target disowning a reset already made (the reset service's ``not_me``: "This wasn't me"), for a "No"
    #: that comes after the password was changed; returns the sentence for the target.
    disowned_after_reset: Callable[..., str] | None = None
    #: Writeback's health as App Home shows it (the health service's ``report``), for refreshed homes.
    health_report: Callable[[], HealthReport] | None = None
    #: Seals a one-time code until it is entered (the reset service's sealer: the same key on every replica).
    sealer: Sealer | None = None
    #: Duo's Auth API, when ``duo-push`` is an allowed method.
    duo: DuoAuth | None = None
    #: The phone numbers the directory holds for a person (by Entra object id), for a call-back.
    phones_of: Callable[[str], Sequence[str]] | None = None
    #: Where Duo pushes are followed until answered: never a Slack handler's thread.
    duo_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        max_workers=4, thread_name_prefix="duo-push"))

    #: Set by ``close``: a push's follower stops at its next look instead of waiting for its deadline.
    stopping: threading.Event = field(default_factory=threading.Event)
    #: App Home refreshes, at most one per person every ``HOME_REFRESH_DELAY_S`` (``bot.services.debounce``).
    home_refreshes: Debounce = field(default_factory=lambda: Debounce(HOME_REFRESH_DELAY_S))
    #: Read-only transactions (``Transactions.reading``); None: ``begin``'s.
    reads: SessionFactory | None = None

    def close(self) -> None:
        """Stop following Duo pushes: one unanswered now stays "under way" until the sweep ends it (on any
        replica), and the agent may start another; a stopping bot never waits out a push's 90 seconds."""
        self.stopping.set()
        self.duo_pool.shutdown(wait=False, cancel_futures=True)
        self.home_refreshes.close()
