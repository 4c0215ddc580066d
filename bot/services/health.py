"""Health pings: is writeback working right now, and does ops hear when that changes (spec section 5).

Every replica's scheduler calls ``tick`` often; a round belongs to a time slot (``slot_of``) and runs only on the
replica whose INSERT of that slot's row wins, so it fires once per interval however many replicas run, and the
schedule survives restarts because it is the clock plus a table. Each check's result is stored; the state is
derived from the latest results; a change of state is a transition row whose ``seq`` follows the last one, so
the INSERT that gets it in is the claim and only its author tells ops. A daily summary is claimed the same
way, per day. A check that raises is logged and recorded as failed; nothing a check does stops the next round.

What ops is told (a change of state, the summary) is written to the outbox in the transaction that inserts the
transition or claims the day, and posted right after it commits (``bot.services.outbox``): a Slack failure delays
an alert, it never loses it, and the outbox keeps "degraded" ahead of the "healthy" that follows it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from bot import messages, store
from bot.clients.directory import Directory
from bot.clients.graph import Graph
from bot.db import SessionFactory, Transactions
from bot.domain.health_state import (
    ROUND_KIND,
    SUMMARY_KIND,
    Change,
    Check,
    CheckResult,
    CheckView,
    HealthReport,
    HealthState,
    TransitionView,
    change,
    ordered,
    overall,
    slot_of,
)
from bot.errors import (
    DirectoryUnavailableError,
    EntraAuthError,
    EntraReauthRequiredError,
    EntraUnavailableError,
    GraphPermissionError,
    GraphThrottledError,
    GraphUnavailableError,
    MicrosoftError,
    NotLinkedError,
    ResetbotError,
)
from bot.metrics import set_health
from bot.models import HealthTransition, utcnow
from bot.policy import generate_temporary_password
from bot.services.outbox import Outbox, channel_message
from bot.settings import Settings

log = logging.getLogger(__name__)

#: Results and slot claims older than this are pruned when the daily summary runs.
RETENTION = timedelta(days=30)
#: How many transitions ``/resetbot health`` shows.
SHOWN_TRANSITIONS = 5
_CHECK_NAMES = frozenset(c.value for c in Check)


@dataclass(frozen=True)
class HealthRules:
    """The part of the settings health reads, so tests can swap it."""

    interval_s: float
    sync_max_age_minutes: int
    summary_hour: int
    canary_upn: str | None
    canary_timeout_s: float
    service_upn: str | None
    ops_channel: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthRules:
        return cls(
            interval_s=settings.health_interval_seconds,
            sync_max_age_minutes=settings.health_sync_max_age_minutes,
            summary_hour=settings.health_summary_hour,
            canary_upn=(settings.canary_upn or "").strip() or None,
            canary_timeout_s=settings.canary_timeout_seconds,
            service_upn=(settings.service_identity_upn or "").strip() or None,
            ops_channel=settings.ops_channel,
        )

    @property
    def tick_s(self) -> float:
        """How often the scheduler should tick: several times per slot, so no slot is missed."""
        return max(0.2, min(self.interval_s / 4, 30.0))

    def checks(self) -> tuple[Check, ...]:
        return tuple(c for c in Check if c != Check.CANARY or self.canary_upn)


#: What a Microsoft error code may look like to be repeated to ops (``AADSTS7000215``, ``Authorization_RequestDenied``).
_MS_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _code(e: MicrosoftError) -> str | None:
    return e.code if e.code and _MS_CODE.fullmatch(e.code) else None


def failure_detail(e: ResetbotError) -> str:
    """The sentence a check's failure is stored and posted with, chosen by the error's kind from bot.messages.

    Never ``str(e)``: a client's message may quote whatever the server said (an LDAP diagnostic, a Graph error
    body, a DN or a URL), and a health detail is kept for 30 days and posted to a channel. The message itself goes
    to the log, which is redacted; only Microsoft's error code (when it looks like one) and the HTTP status are
    repeated here, because they are what support asks for."""
    if isinstance(e, DirectoryUnavailableError):
        return {
            "unreachable": messages.health.health_ad_unreachable,
            "bind_refused": messages.health.health_ad_bind_refused,
            "base_unreadable": messages.health.health_ad_base_unreadable,
            "failed": messages.health.health_ad_failed,
        }[e.fault]()
    if isinstance(e, EntraReauthRequiredError):
        return messages.health.health_signin_expired()
    if isinstance(e, EntraAuthError):
        return messages.health.health_entra_refused(_code(e), e.status)
    if isinstance(e, EntraUnavailableError):
        return messages.health.health_entra_unavailable(_code(e), e.status)
    if isinstance(e, GraphPermissionError):
        return messages.health.health_graph_denied(_code(e), e.status)
    if isinstance(e, GraphThrottledError):
        return messages.health.health_graph_throttled()
    if isinstance(e, GraphUnavailableError):
        return messages.health.health_graph_unavailable()
    if isinstance(e, MicrosoftError):
        return messages.health.health_microsoft_failed(type(e).__name__, _code(e), e.status)
    return messages.health.health_check_failed(type(e).__name__)


@dataclass(frozen=True)
class TickOutcome:
    #: The round this tick ran (None: another replica has it, or it already ran).
    round_slot: int | None = None
    #: The change this tick announced to ops, if any.
    change: Change | None = None
    summary: bool = False


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class HealthService(Transactions):
    begin: SessionFactory
    #: Where a change of state and the daily summary are written for ops, and delivered from (retried).
    outbox: Outbox
    graph: Graph
    directory: Directory
    #: A Graph token straight from the token endpoint (never msal's cache): proves token acquisition works now.
    fresh_app_token: Callable[[], object]
    #: The linked service identity's delegated token, which the canary is reset with.
    canary_token: Callable[[], str]
    rules: HealthRules
    clock: Callable[[], datetime] = field(default=utcnow)
    runner: str = field(default_factory=_runner)
    #: Read-only transactions (``Transactions.reading``); None: ``begin``'s.
    reads: SessionFactory | None = None
    #: The check functions by name; tests may replace one to make it fail.
    checks: dict[Check, Callable[[], CheckResult]] = field(init=False)
    _seen_slot: int | None = field(default=None, init=False, repr=False)
    _seen_day: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.checks = {
            Check.GRAPH_TOKEN: self._check_token,
            Check.GRAPH_READ: self._check_graph,
            Check.LDAP: self._check_ldap,
            Check.DIRECTORY_SYNC: self._check_sync,
            Check.CANARY: self._check_canary,
        }

    # --- the schedule --------------------------------------------------------------------------------------------

    def tick(self, *, now: datetime | None = None) -> TickOutcome:
        """Run this slot's round if this replica claims it, then the day's summary if it is due and claimed.
        Each half is isolated: a failure is logged and the other half (and the next tick) still runs."""
        now = now or self.clock()
        slot: int | None = None
        announced: Change | None = None
        summary = False
        try:
            slot, announced = self._maybe_round(now)
        except Exception:
            log.exception("a round of health pings failed; the next slot runs as planned")
        try:
            summary = self._maybe_summary(now)
        except Exception:
            log.exception("the daily health summary failed")
        try:
            self._refresh_gauge()
        except Exception:
            log.exception("the health gauge could not be read from the database")
        return TickOutcome(round_slot=slot, change=announced, summary=summary)

    def _refresh_gauge(self) -> None:
        """Every replica's ``resetbot_health_ok`` says the latest stored round, whichever replica ran it, so a
        scrape of any replica tells the truth (not only the one that happened to win the round)."""
        with self.reading() as session:
            latest = store.health.latest_health_results(session)
        for check, result in latest.items():
            set_health(check, result.ok)

    def _maybe_round(self, now: datetime) -> tuple[int | None, Change | None]:
        slot = slot_of(now, self.rules.interval_s)
        if slot == self._seen_slot:
            return None, None  # this replica already tried this slot (a cache: the claim below decides)
        with self.begin() as session:
            won = store.health.claim_health_slot(session, kind=ROUND_KIND, slot=slot, runner=self.runner, at=now)
        self._seen_slot = slot
        if not won:
            return None, None
        return slot, self.run_round(slot, now=now)

    def run_round(self, slot: int, *, now: datetime | None = None) -> Change | None:
        """Run every configured check, store the results, and announce a change of state (once); returns the
        change announced."""
        results = {check: self._run(check) for check in self.rules.checks()}
        when = now or self.clock()
        with self.begin() as session:
            store.health.add_health_results(session, round_slot=slot, at=when,
                                            results={c.value: (r.ok, r.detail) for c, r in results.items()})
        return self._record_change(slot, when)

    def _run(self, check: Check) -> CheckResult:
        try:
            result = self.checks[check]()
        except ResetbotError as e:
            log.warning("health check %s failed (%s): %s", check.value, type(e).__name__, e)
            result = CheckResult(ok=False, detail=failure_detail(e))
        except Exception as e:
            log.exception("health check %s raised", check.value)
            result = CheckResult(ok=False, detail=messages.health.health_check_crashed(type(e).__name__))
        if not result.ok:
            log.warning("health check %s failed: %s", check.value, result.detail)
        return result

    def _record_change(self, slot: int, now: datetime) -> Change | None:
        """Compare the latest results with the last announced state; if it changed, store the transition and, in
        the same transaction, the message telling ops. The transition's ``seq`` is the last one's plus one: of two
        replicas racing, one INSERT gets in, and only its author's message is written."""
        configured = set(self.rules.checks())
        with self.begin() as session:
            last = store.health.last_health_transition(session)
            if last is not None and last.round_slot > slot:
                return None  # a later round already spoke; this one finished late
            latest = {Check(name): CheckResult(ok=r.ok, detail=r.detail)
                      for name, r in store.health.latest_health_results(session).items()
                      if name in _CHECK_NAMES and Check(name) in configured}
            previous_state = HealthState(last.to_state) if last else HealthState.UNKNOWN
            previous_failing = [Check(c) for c in json.loads(last.failing)] if last else []
            found = change(previous_failing, previous_state, latest)
            if found is None:
                return None
            changed = {c.value: False for c, _ in found.newly_failing} | {c.value: True for c in found.recovered}
            row = HealthTransition(seq=(last.seq if last else 0) + 1, round_slot=slot, at=now,
                                   from_state=found.from_state.value, to_state=found.to_state.value,
                                   failing=json.dumps([c.value for c in found.failing]),
                                   changed=json.dumps(changed, sort_keys=True))
            if not store.health.add_health_transition(session, transition=row):
                return None
            told = [channel_message(self.rules.ops_channel, messages.health.health_transition(found),
                                    origin="health.transition")] if found.news and self.rules.ops_channel else []
            ids = self.outbox.enqueue(session, told, now=now)
        log.info("health changed: %s -> %s (failing: %s)", found.from_state.value, found.to_state.value,
                 ", ".join(c.value for c in found.failing) or "none")
        self.outbox.deliver(ids, now=now)  # what Slack does not take now, the outbox's scheduled run retries
        return found if found.news else None

    def _maybe_summary(self, now: datetime) -> bool:
        if now.hour < self.rules.summary_hour:
            return False
        day = now.date().toordinal()
        if day == self._seen_day:
            return False
        since = now - timedelta(days=1)
        # The claim, the summary and its message in one transaction: a summary claimed is a summary owed (a
        # failure rolls the claim back, and the next tick tries again).
        with self.begin() as session:
            won = store.health.claim_health_slot(session, kind=SUMMARY_KIND, slot=day, runner=self.runner, at=now)
            ids: list[int] = []
            if won:
                counts = {Check(name): c for name, c in store.health.health_failures_since(session, since=since).items()
                          if name in _CHECK_NAMES}
                changes = len(store.health.recent_health_transitions(session, limit=10_000, since=since))
                store.health.prune_health(session, before=now - RETENTION)
                if self.rules.ops_channel:
                    text = messages.health.health_summary(self._report(session), counts, changes)
                    ids = self.outbox.enqueue(session, [channel_message(self.rules.ops_channel, text,
                                                                        origin="health.summary")], now=now)
        self._seen_day = day
        if not won:
            return False
        self.outbox.deliver(ids, now=now)
        return True

    # --- what people see -----------------------------------------------------------------------------------------

    def report(self) -> HealthReport:
        """The current state (from each configured check's latest result) and the last transitions."""
        with self.reading() as session:
            return self._report(session)

    def _report(self, session: Session) -> HealthReport:
        configured = self.rules.checks()
        latest = store.health.latest_health_results(session)
        transitions = store.health.recent_health_transitions(session, limit=SHOWN_TRANSITIONS)
        views = tuple(CheckView(check=c, ok=latest[c.value].ok, detail=latest[c.value].detail,
                                at=latest[c.value].at) for c in configured if c.value in latest)
        shown = tuple(TransitionView(
            at=t.at, from_state=HealthState(t.from_state), to_state=HealthState(t.to_state),
            failing=ordered(Check(c) for c in json.loads(t.failing)),
            changed={Check(c): bool(ok) for c, ok in json.loads(t.changed).items()},
        ) for t in transitions)
        return HealthReport(state=overall(views), checks=views, transitions=shown)

    # --- the checks ----------------------------------------------------------------------------------------------

    def _check_token(self) -> CheckResult:
        self.fresh_app_token()
        return CheckResult(ok=True, detail=messages.health.health_token_ok())

    def _check_graph(self) -> CheckResult:
        self.graph.ping()
        return CheckResult(ok=True, detail=messages.health.health_graph_ok())

    def _check_ldap(self) -> CheckResult:
        self.directory.ping()
        return CheckResult(ok=True, detail=messages.health.health_ldap_ok())

    def _check_sync(self) -> CheckResult:
        sync = self.graph.organization_sync()
        if sync.on_premises_sync_enabled is False:
            return CheckResult(ok=False, detail=messages.health.health_sync_off())
        if sync.last_sync is None:
            return CheckResult(ok=False, detail=messages.health.health_sync_never())
        if self.clock() - sync.last_sync > timedelta(minutes=self.rules.sync_max_age_minutes):
            return CheckResult(ok=False, detail=messages.health.health_sync_stale(sync.last_sync,
                                                                                  self.rules.sync_max_age_minutes))
        return CheckResult(ok=True, detail=messages.health.health_sync_ok(sync.last_sync))

    def _check_canary(self) -> CheckResult:
        """Reset the canary through Graph as the service identity, then read AD: pwdLastSet must have moved.
        The only end-to-end proof that writeback works. The password lives only in this call's memory."""
        upn = self.rules.canary_upn
        assert upn
        before = self.directory.find_user(upn=upn)
        if before is None:
            return CheckResult(ok=False, detail=messages.health.canary_not_in_ad(upn))
        user = self.graph.get_user(upn)
        if user is None:
            return CheckResult(ok=False, detail=messages.health.canary_not_in_entra(upn))
        try:
            token = self.canary_token()
        except NotLinkedError:
            return CheckResult(ok=False, detail=messages.health.canary_not_linked(self.rules.service_upn or ""))
        policy = self.directory.effective_policy(before)
        operation = self.graph.reset_password(
            access_token=token, user_id=user.id, poll_timeout_s=self.rules.canary_timeout_s,
            new_password=generate_temporary_password(policy, sam=before.sam, display_name=before.display_name))
        if not operation.done:
            return CheckResult(ok=False, detail=messages.health.canary_timed_out(upn, self.rules.canary_timeout_s))
        if not operation.succeeded:
            return CheckResult(ok=False, detail=messages.health.canary_refused(upn, operation.status_detail))
        after = self.directory.find_user(dn=before.dn)
        if after is None:
            return CheckResult(ok=False, detail=messages.health.canary_not_in_ad(upn))
        if after.must_change_password and before.must_change_password:
            return CheckResult(ok=False, detail=messages.health.canary_ambiguous(upn))
        if after.pwd_last_set_raw == before.pwd_last_set_raw:
            return CheckResult(ok=False, detail=messages.health.canary_not_moved(upn))
        return CheckResult(ok=True, detail=messages.health.canary_landed(upn, after.pwd_last_set))
