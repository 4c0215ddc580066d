"""Follow-ups after a successful reset (spec section 5): prove it landed in AD, make sure the user moved on.

A reset's success and its checks are written in one transaction (``plan``), so a recorded success always has its
follow-ups. The scheduler on every replica calls ``run_due``: it claims due checks with a compare-and-set, answers
all of them with batched LDAP searches (``Directory.password_states_by_sam``: paged ORs of escaped logon names), and
finishes each with a second compare-and-set on its claim. Only a winning finish audits and speaks, so a check's
outcome is recorded, and its message queued, once however many replicas tick. If AD cannot be reached the claimed
checks are handed back, due again shortly and not counted as attempts: nothing is lost and nothing is decided on an
outage.

What a finish says (a thread line, a DM) is written to the outbox in the finish's own transaction and posted right
after the commit (``bot.services.outbox``): a Slack failure or a process dying after the commit delays the message,
it no longer loses it. Delivery is at least once: only a process dying between Slack's answer and marking the
message sent can post it twice (chat.postMessage has no idempotency key).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from bot import messages, store
from bot.clients.directory import Directory, PasswordState
from bot.db import SessionFactory, Transactions
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.followup_rules import (
    FollowUpKind,
    Landed,
    Replaced,
    Seen,
    landed,
    landed_retry_at,
    password_writes,
    replaced,
    replaced_schedule,
)
from bot.errors import ResetbotError
from bot.metrics import record_followup
from bot.models import FollowUp, OutboxMessage, ResetRequest, utcnow
from bot.policy import filetime_to_datetime
from bot.services.outbox import Outbox, dm_message, thread_message
from bot.settings import Settings

log = logging.getLogger(__name__)

#: How long a claimed check may run before another replica may take it over (an LDAP search takes seconds).
CLAIM_LEASE = timedelta(minutes=2)
#: When AD cannot be reached, claimed checks are due again after this long.
OUTAGE_RETRY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class FollowUpRules:
    """The follow-up schedule, from the settings."""

    #: First "landed?" look after the reset; each later look waits twice as long, up to the deadline.
    landed_first: timedelta = timedelta(seconds=15)
    #: When the "landed?" looks give up and the thread is warned.
    landed_deadline: timedelta = timedelta(minutes=15)
    #: When to look whether the user replaced the temporary password; the last is the final word.
    replaced_after: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))

    @classmethod
    def from_settings(cls, settings: Settings) -> FollowUpRules:
        return cls(landed_first=settings.followup_landed_first, landed_deadline=settings.followup_landed_deadline,
                   replaced_after=tuple(settings.followup_replaced_after))


@dataclass(frozen=True, slots=True)
class _Said:
    """What to post once a finish has won: a thread line and/or a DM to the target."""

    thread: str | None = None
    dm: str | None = None


@dataclass
class FollowUpService(Transactions):
    begin: SessionFactory
    directory: Directory
    #: Where what a finish says is written, and delivered from (retried when Slack fails).
    outbox: Outbox
    rules: FollowUpRules = field(default_factory=FollowUpRules)
    clock: Callable[[], datetime] = field(default=utcnow)
    #: Read-only transactions (``Transactions.reading``); None: ``begin``'s.
    reads: SessionFactory | None = None

    # --- scheduling -------------------------------------------------------------------------------------------

    def plan(self, session: Session, req: ResetRequest, *, reset_at: datetime, baseline: int | None,
             baseline_version: int | None = None, reminders: bool = True) -> None:
        """Add the checks of a password reset that Entra reported done, in the caller's transaction. Without
        ``reminders`` (nobody holds the temporary password: it was lost in a crash) only the landed check.
        ``baseline`` / ``baseline_version``: the account's ``pwdLastSet`` / ``msDS-KeyVersionNumber`` just before."""
        rows = [FollowUp(request_id=req.id, kind=FollowUpKind.LANDED.value, step=0, final=False,
                         due_at=reset_at + self.rules.landed_first, deadline_at=reset_at + self.rules.landed_deadline,
                         reset_at=reset_at, baseline_pwd_last_set=baseline, baseline_key_version=baseline_version)]
        times = replaced_schedule(reset_at, self.rules.replaced_after) if reminders else []
        rows += [FollowUp(request_id=req.id, kind=FollowUpKind.REPLACED.value, step=i, final=i == len(times) - 1,
                          due_at=at, reset_at=reset_at, baseline_pwd_last_set=baseline)
                 for i, at in enumerate(times)]
        store.followups.add_followups(session, rows=rows)

    # --- the tick ---------------------------------------------------------------------------------------------

    def run_due(self, *, now: datetime | None = None) -> int:
        """Claim and answer every due check; returns how many this replica finished."""
        now = now or self.clock()
        claim = secrets.token_hex(8)
        with self.begin() as session:
            due = store.followups.due_followups(session, now=now)
            claimed = [f for f in (store.followups.claim_followup(session, followup_id=i, claim=claim, now=now,
                                                                  lease_until=now + CLAIM_LEASE) for i in due) if f]
            requests = {f.request_id: store.requests.get_request(session, request_id=f.request_id) for f in claimed}
        if not claimed:
            return 0
        claimed = self._latest_only(claimed, claim=claim, now=now)
        try:
            accounts = self._accounts([r for r in requests.values() if r is not None])
        except ResetbotError as e:
            log.warning("follow-ups: AD could not be read (%s); %d check(s) due again in %s",
                        type(e).__name__, len(claimed), OUTAGE_RETRY)
            with self.begin() as session:
                for f in claimed:
                    assert f.id is not None
                    store.followups.retry_followup(session, followup_id=f.id, claim=claim, due_at=now + OUTAGE_RETRY,
                                                   seen=f.seen_pwd_last_set, counted=False)
            return 0
        finished = 0
        # "Landed" before "replaced": a replaced check reads what the landed check saw.
        for f in sorted(claimed, key=lambda f: (f.kind != FollowUpKind.LANDED, f.due_at)):
            req = requests.get(f.request_id)
            try:
                if req is None:  # never deleted by the product; a hand-cleaned database must not loop forever
                    log.warning("follow-up %s of %s: the request is gone; the check is dropped", f.kind,
                                f.request_id)
                    self._drop([f], claim=claim, now=now)
                    continue
                finished += self._answer(f, req, accounts.get(req.id), claim=claim, now=now)
            except Exception:
                # One bad check must not stop the others; its lease runs out and it is tried again.
                log.exception("follow-up %s of %s failed; it is tried again after its lease", f.kind, f.request_id)
        return finished

    def _latest_only(self, claimed: list[FollowUp], *, claim: str, now: datetime) -> list[FollowUp]:
        """Of one request's "replaced" checks due together (the bot was down past several of them), answer only
        the latest: one reminder or one final word, never a burst. The earlier ones are dropped unanswered."""
        latest: dict[str, FollowUp] = {}
        for f in claimed:
            if f.kind == FollowUpKind.REPLACED and (f.request_id not in latest or f.step > latest[f.request_id].step):
                latest[f.request_id] = f
        stale = [f for f in claimed if f.kind == FollowUpKind.REPLACED and latest[f.request_id] is not f]
        self._drop(stale, claim=claim, now=now)
        return [f for f in claimed if f not in stale]

    def _drop(self, checks: Sequence[FollowUp], *, claim: str, now: datetime) -> None:
        if checks:
            with self.begin() as session:
                store.followups.drop_claimed_followups(session, ids=[f.id for f in checks if f.id is not None],
                                                       claim=claim,
                                                       now=now)

    def _accounts(self, requests: Sequence[ResetRequest]) -> dict[str, PasswordState]:
        """Each request's AD account, by request id: paged searches for all of them by sAMAccountName (indexed;
        it also finds an account moved to another OU since the reset), then by DN for any not found that way (a
        renamed logon name). Raises on an AD error, so that an outage is never read as "the account is gone"."""
        by_sam = self.directory.password_states_by_sam(sorted({r.target_sam for r in requests if r.target_sam}))
        found: dict[str, PasswordState] = {}
        for req in requests:
            account = by_sam.get(req.target_sam.lower()) if req.target_sam else None
            if account is not None:
                found[req.id] = account
        missing = [r for r in requests if r.id not in found and r.target_dn]
        by_dn = self.directory.password_states_by_dn(sorted({r.target_dn for r in missing if r.target_dn}))
        for req in missing:
            account = by_dn.get(req.target_dn.lower()) if req.target_dn else None
            if account is not None:
                found[req.id] = account
        return found

    def _answer(self, f: FollowUp, req: ResetRequest, account: PasswordState | None, *, claim: str,
                now: datetime) -> int:
        # A kind this release does not know (a newer one wrote it, mid rolling upgrade) raises here: the check is
        # left running, and after its lease a replica that knows it answers it; it is never taken for another kind.
        kind = FollowUpKind(f.kind)
        seen = Seen(account.pwd_last_set_raw, account.password_never_expires, account.key_version) if account \
            else None
        if kind == FollowUpKind.LANDED:
            return self._answer_landed(f, req, seen, claim=claim, now=now)
        return self._answer_replaced(f, req, seen, claim=claim, now=now)

    def _answer_landed(self, f: FollowUp, req: ResetRequest, seen: Seen | None, *, claim: str,
                       now: datetime) -> int:
        assert f.id is not None
        verdict = landed(seen, baseline=f.baseline_pwd_last_set, reset_at=f.reset_at,
                         baseline_version=f.baseline_key_version)
        raw = seen.pwd_last_set if seen else None
        name, dn = req.target_display, req.target_dn or ""
        if verdict == Landed.NOT_YET:
            deadline = f.deadline_at or f.reset_at + self.rules.landed_deadline
            again = landed_retry_at(attempt=f.attempts, first_delay=self.rules.landed_first, now=now,
                                    deadline=deadline)
            if again is not None:
                with self.begin() as session:
                    store.followups.retry_followup(session, followup_id=f.id, claim=claim, due_at=again, seen=raw)
                return 0
            said = _Said(thread=messages.followups.writeback_not_seen(
                name, waited=messages.format.duration_words((now - f.reset_at).total_seconds()),
                seen_at=filetime_to_datetime(raw or 0), reset_at=f.reset_at, dn=dn))
            # The helpdesk has to act first: no reminders about a password AD may not have.
            return self._finish(f, req, claim=claim, now=now, outcome="not_landed", seen=raw,
                                action=AuditAction.WRITEBACK_NOT_SEEN, said=said, retire=FollowUpKind.REPLACED)
        if verdict == Landed.ACCOUNT_GONE:
            said = _Said(thread=messages.followups.writeback_account_gone(name, dn))
            return self._finish(f, req, claim=claim, now=now, outcome=verdict.value, seen=raw,
                                action=AuditAction.WRITEBACK_NOT_SEEN, said=said, retire=FollowUpKind.REPLACED)
        if verdict == Landed.UNPROVEN:
            # Not a warning that it failed, not a confirmation: the reminders go on (it most likely landed).
            return self._finish(f, req, claim=claim, now=now, outcome=verdict.value, seen=raw,
                                action=AuditAction.WRITEBACK_UNPROVEN,
                                said=_Said(thread=messages.followups.writeback_unproven(name, dn)))
        at = filetime_to_datetime(raw or 0)
        if verdict == Landed.YES_WITHOUT_MUST_CHANGE:
            text = messages.followups.writeback_without_must_change(name, seen_at=at)
        elif verdict == Landed.YES_MUST_CHANGE_MISSING:
            assert seen is not None
            text = messages.followups.writeback_must_change_missing(
                name, seen_at=at, maybe_own=password_writes(seen, f.baseline_key_version) is None)
        else:
            text = messages.followups.writeback_confirmed(name, must_change=raw == 0, seen_at=at)
        return self._finish(f, req, claim=claim, now=now, outcome=verdict.value, seen=raw,
                            action=AuditAction.WRITEBACK_CONFIRMED, said=_Said(thread=text))

    def _answer_replaced(self, f: FollowUp, req: ResetRequest, seen: Seen | None, *, claim: str,
                         now: datetime) -> int:
        with self.reading() as session:
            left = _left_by_reset(store.followups.followups_for(session, request_id=req.id))
        verdict = replaced(seen, reset_at=f.reset_at, left_by_reset=left)
        raw = seen.pwd_last_set if seen else None
        waited = messages.format.duration_words((now - f.reset_at).total_seconds())
        if verdict == Replaced.YES:
            sentence = messages.followups.password_replaced(req.target_display, at=filetime_to_datetime(raw or 0))
            return self._finish(f, req, claim=claim, now=now, outcome=verdict.value, seen=raw,
                                action=AuditAction.USER_CHOSE_OWN, retire=FollowUpKind.REPLACED,
                                said=_Said(thread=sentence))
        if verdict == Replaced.ACCOUNT_GONE:
            return self._finish(f, req, claim=claim, now=now, outcome=verdict.value, seen=raw,
                                action=AuditAction.NEVER_REPLACED, retire=FollowUpKind.REPLACED,
                                said=_Said(thread=messages.followups.writeback_account_gone(req.target_display,
                                                                                            req.target_dn or "")))
        if f.final:
            return self._finish(f, req, claim=claim, now=now, outcome="never_replaced", seen=raw,
                                action=AuditAction.NEVER_REPLACED,
                                said=_Said(thread=messages.followups.password_never_replaced(req.target_display,
                                                                                             waited=waited)))
        return self._finish(f, req, claim=claim, now=now, outcome="reminded", seen=raw,
                            action=AuditAction.REPLACE_REMINDED,
                            said=_Said(dm=messages.followups.replace_reminder(waited=waited)))

    def _finish(self, f: FollowUp, req: ResetRequest, *, claim: str, now: datetime, outcome: str, seen: int | None,
                action: AuditAction, said: _Said, retire: FollowUpKind | None = None) -> int:
        assert f.id is not None
        origin = f"followup.{f.kind}"
        owed: list[OutboxMessage] = []
        if said.thread and req.channel_id and req.thread_ts:
            owed.append(thread_message(req.channel_id, req.thread_ts, said.thread, origin=origin, request_id=req.id))
        if said.dm and req.target_slack_id:
            owed.append(dm_message(req.target_slack_id, said.dm, origin=origin, request_id=req.id))
        with self.begin() as session:
            if not store.followups.finish_followup(session, followup_id=f.id, claim=claim, outcome=outcome, seen=seen,
                                                   now=now):
                return 0  # another replica took this check over after our lease ran out: it speaks, not us
            if retire is not None:
                store.followups.skip_followups(session, request_id=req.id, kind=retire, now=now, claim=claim)
            store.audit.append_audit(session, draft=AuditDraft(
                actor="scheduler", action=action, request_id=req.id,
                detail={"check": f.kind, "step": f.step, "outcome": outcome, "attempts": f.attempts,
                        "pwd_last_set": "" if seen is None else str(seen)}))
            ids = self.outbox.enqueue(session, owed, now=now)
        record_followup(f.kind, outcome)
        log.info("follow-up %s #%d of %s: %s", f.kind, f.step, req.id, outcome)
        self.outbox.deliver(ids, now=now)  # what Slack does not take now, the outbox's scheduled run retries
        return 1


def _left_by_reset(checks: Sequence[FollowUp]) -> int | None:
    """The ``pwdLastSet`` the reset itself left, as the landed check saw it (None if it never saw it land).

    Where must-change applied that is 0, whatever the landed check read: a later non-zero instant it read (when
    it said "landed" of one) is the user's own change on top of the reset, made before the bot looked (the bot
    was down, or AD was unreachable). Where must-change did not apply, the instant the landed check saw is the
    reset's own, and it is never taken for the user's change later. "Unproven" saw 0, as after a landed reset."""
    for c in checks:
        if c.kind == FollowUpKind.LANDED and c.outcome in (Landed.YES, Landed.UNPROVEN):
            return 0
        if c.kind == FollowUpKind.LANDED and c.outcome in (Landed.YES_WITHOUT_MUST_CHANGE,
                                                          Landed.YES_MUST_CHANGE_MISSING):
            return c.seen_pwd_last_set
    return None
