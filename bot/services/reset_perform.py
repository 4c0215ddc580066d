"""Performing an approved reset: approved → resetting → succeeded | rejected | failed, its lease kept alive while
it runs, and the messages its verdict owes (written to the outbox with it). ``bot.services.reset`` says the whole
story; ``ResetRecovery`` finishes what a stopped bot left half-way.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import SecretStr
from sqlmodel import Session

from bot import messages, store
from bot.clients.directory import Directory, DirectoryUser
from bot.clients.graph import Graph, ResetAccepted
from bot.clients.slack_notify import Notifier
from bot.db import SessionFactory, Transactions
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.containment import DEFAULT_SCRAMBLE_WINDOW
from bot.domain.lifecycle import RequestState
from bot.domain.reset_polling import next_poll
from bot.domain.verdict import ErrorKind, ResetOutcome, Verdict, VerdictKind, classify, error_kind
from bot.errors import ResetbotError, SlackUnavailableError
from bot.logs import forget_secret
from bot.models import OutboxMessage, ResetRequest, utcnow
from bot.policy import RuleBroken, generate_temporary_password, precheck
from bot.services.operation_poller import OperationPoller
from bot.services.outbox import Outbox, dm_message, thread_message
from bot.services.sealing import Sealer
from bot.settings import Delivery

#: Logged under the service's name, as before the service was split in modules: operators' log filters and the tests
#: name it.
log = logging.getLogger("bot.services.reset")

REVEAL_TTL = timedelta(minutes=10)
#: How long recovery keeps asking Graph (unreachable, or the operation still running) before it says "unknown".
RECOVERY_GIVE_UP = timedelta(minutes=30)
#: A ``resetting`` request's lease: renewed every ``LEASE_HEARTBEAT`` while its reset runs in a live process
#: (Graph's retries and Retry-After waits included), so only a reset whose process stopped is recovered, about
#: a minute after it stopped. Four missed heartbeats before anyone else may take it.
LEASE = timedelta(seconds=60)
HEARTBEATS_PER_LEASE = 4
LEASE_HEARTBEAT = LEASE / HEARTBEATS_PER_LEASE
#: A Temporary Access Pass issued with ``--tap``: valid long enough to be read out and used, once.
TAP_LIFETIME_MINUTES = 60
_FINAL_ACTION = {
    RequestState.SUCCEEDED: AuditAction.SUCCEEDED,
    RequestState.REJECTED: AuditAction.REJECTED,
    RequestState.FAILED: AuditAction.FAILED,
}


class FollowUpPlanner(Protocol):
    """Schedules the follow-ups of a reset, inside the transaction that records its success."""

    def plan(self, session: Session, req: ResetRequest, *, reset_at: datetime, baseline: int | None,
             baseline_version: int | None = None, reminders: bool = True) -> None: ...


@dataclass(frozen=True, slots=True)
class _Attempt:
    verdict: Verdict
    operation_id: str | None = None
    #: The new password (or TAP) when it was set; the only copy until it is sealed.
    password: SecretStr | None = None
    #: The account's ``pwdLastSet`` and ``msDS-KeyVersionNumber`` read just before the reset: the follow-ups'
    #: baseline.
    baseline: int | None = None
    baseline_version: int | None = None
    #: Graph accepted the reset but its operation was still running when the poll's bound ran out: the outcome is
    #: recovery's to learn (``password`` then waits sealed for it), not "failed".
    pending: bool = False
    #: The lease was taken before Graph was called: another replica's recovery owns the reset; nothing was set.
    lost: bool = False
    #: Graph accepted the reset (202) and its operation is to be followed (``_Following``), by the poller.
    following: _Following | None = None


@dataclass(slots=True)
class _Following:
    """A reset whose Graph operation is in flight, as the poller carries it from the 202 to the verdict: what
    the verdict needs (the password until it is sealed, the policy check, the baseline), and when to poll and
    renew the lease next (``time.monotonic()``)."""

    started: ResetRequest
    owner: str
    correlation_id: str
    recovered: bool
    access_token: str = field(repr=False)
    location: str
    password: SecretStr = field(repr=False)
    checks: list[RuleBroken]
    never_expires: bool
    baseline: int | None
    baseline_version: int | None
    give_up_at: float
    poll_at: float
    renew_at: float
    interval_s: float | None = None
    #: When the first poll went out (Graph's first allowed look): the fast window runs from there.
    first_look: float | None = None
    #: Concluded, or given up here: the password is forgotten and the reset no longer counts as in flight.
    finished: bool = False


@dataclass
class ResetDeps(Transactions):
    """What the reset service is built from (its constructor's fields, in order), shared by its parts:
    ``ResetPerforming``, ``ResetRecovery`` and ``ResetReveal`` each inherit it, so each reads the same fields."""

    begin: SessionFactory
    #: Only for the request message's redraw (chat.update) and its approver group's id: everything the reset posts
    #: goes through ``outbox``.
    notifier: Notifier
    #: Where the reset's messages are written with the decision they announce, and delivered from (retried).
    outbox: Outbox
    graph: Graph
    directory: Directory
    sealer: Sealer
    #: The delegated Graph access token of the agent (Slack id) whose hands perform the reset.
    token_for: Callable[[str], str]
    security_channel: str | None = None
    #: The agents' user group: a requester who has left it since asking is shown no password.
    agents_group: str | None = None
    #: The security user group: only its members may press Scramble password on a containment alert.
    security_group: str | None = None
    followups: FollowUpPlanner | None = None
    #: The request rules' check made again right before the credential is set (``RequestService.recheck``): None
    #: to go on, or (reason, the thread's sentence) and nothing is set.
    recheck: Callable[[ResetRequest], tuple[str, str] | None] | None = None
    poll_timeout_s: float = 60.0
    #: A ``resetting`` request's lease (``LEASE`` unless the operator shortens it): how long after its process
    #: stopped another replica may take the reset over. Renewed four times within it.
    lease: timedelta = LEASE
    #: ``target``: only the person whose password it is reveals it, from their DM; ``agent``: the requester.
    delivery: Delivery = Delivery.AGENT
    #: How long after its containment alert Scramble password may be pressed (``RESETBOT_SCRAMBLE_WINDOW_HOURS``).
    scramble_window: timedelta = DEFAULT_SCRAMBLE_WINDOW
    clock: Callable[[], datetime] = field(default=utcnow)
    #: Follows every reset's Graph operation from its 202 to its verdict, with the lease renewed as it goes: no
    #: thread waits for Graph (``bot.services.operation_poller``).
    poller: OperationPoller = field(default_factory=OperationPoller)
    #: Read-only transactions (``Transactions.reading``); None: ``begin``'s.
    reads: SessionFactory | None = None
    _in_flight: int = field(default=0, init=False, repr=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)

    def delivers_to_target(self, req: ResetRequest) -> bool:
        """Whether only the target reveals this request's password: ``RESETBOT_DELIVERY=target`` as it was when the
        request was made (stored with it, so a later change of the setting gives nobody else the password; only a
        request made before it was stored follows the setting now). A target with no Slack account is refused at
        ``/reset`` and before the reset; should one get here, nobody reveals it (never the agent instead)."""
        mode = Delivery(req.delivery) if req.delivery else self.delivery
        return mode == Delivery.TARGET

    def _after_tap_unshown(self, done: ResetRequest, correlation_id: str) -> None:
        """A TAP Entra issued whose process stopped before its verdict, recorded by recovery: nobody can be shown
        it, so it is deleted in Entra (``ResetContainment`` does it). Never raises."""

    def _after_success(self, done: ResetRequest, correlation_id: str, *, withheld: str | None = None) -> None:
        """What a succeeded reset's request also asked for, or its withholding (``withheld``: why nobody may read
        it) calls for, once its verdict is said: ``--revoke-sessions``, containing a target's "No", deleting a
        withheld TAP in Entra (``ResetContainment`` does them). Never raises."""


class ResetPerforming(ResetDeps):
    """``perform``: the check made again, the reset (or TAP) with its lease, the verdict and its messages."""


    def wait_idle(self, timeout: float) -> bool:
        """Block until no reset is running (every verdict written, and posted unless Slack failed: then the outbox
        owes it), or ``timeout``; True when idle. What a graceful
        shutdown waits for before it stops, and what tests wait for before the next story begins."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def close(self) -> None:
        """Stop following operations (after ``wait_idle``): any still in flight are recovery's once their lease
        lapses."""
        self.poller.close()

    def perform(self, req: ResetRequest, *, correlation_id: str) -> None:
        """Run the reset of an approved request up to Graph's 202 (the poller takes it from there to the
        verdict); only the caller whose compare-and-set wins does anything."""
        self._enter()
        try:
            self._perform(req, correlation_id)
        finally:
            self._leave()

    def _enter(self) -> None:
        with self._idle:
            self._in_flight += 1

    def _leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _perform(self, req: ResetRequest, correlation_id: str) -> None:
        refused = self.recheck(req) if self.recheck is not None else None
        if refused is not None:
            self._refuse_before_reset(req, *refused, correlation_id=correlation_id)
            return
        # Read before the request becomes ``resetting``, so that the transaction that says a reset began also
        # holds what recovery needs if this process dies before Graph's operation is stored: the account's
        # baseline (a write since it means the reset reached AD) and the call's client-request-id.
        account = None if req.tap else self._account(req)
        ad = account if isinstance(account, DirectoryUser) else None
        now = self.clock()
        owner = secrets.token_hex(8)
        with self.begin() as session:
            started = store.requests.transition(
                session, request_id=req.id, expected={RequestState.APPROVED}, to=RequestState.RESETTING,
                changes={"lease_owner": owner, "lease_until": now + self.lease, "client_request_id": correlation_id,
                         "baseline_pwd_last_set": ad.pwd_last_set_raw if ad else None,
                         "baseline_key_version": ad.key_version if ad else None},
                audit=AuditDraft(actor="system", action=AuditAction.RESET_STARTED, correlation_id=correlation_id))
            ids = [] if started is None else self.outbox.enqueue(session, _in_thread(
                started, messages.reset.tap_started(started.target_display) if started.tap
                else messages.reset.reset_started(started.target_display), origin="reset.started"), now=now)
        if started is None:
            return
        self._carry_out(started, owner, correlation_id, account=account, announce=ids)

    def _carry_out(self, started: ResetRequest, owner: str, correlation_id: str, *,
                   account: DirectoryUser | ResetbotError | None, announce: list[int],
                   recovered: bool = False) -> None:
        """The reset of a ``resetting`` request whose lease ``owner`` holds, to its verdict: the one performing
        it, or recovery making again a reset that never reached AD. The heartbeat runs from the start: the first
        post can be slower than the lease (Slack rate-limiting the channel), and a lapsed lease lets another
        replica's recovery take a live reset."""
        with self._heartbeat(started.id, owner):
            self.outbox.deliver(announce, now=self.clock())
            attempt = (self._issue_tap(started, correlation_id, owner) if started.tap
                       else self._reset(started, correlation_id, owner, account, recovered=recovered))
        if attempt.following is not None:
            self._follow(attempt.following)
            return
        self._conclude(started, attempt, owner, correlation_id, recovered=recovered)

    def _conclude(self, started: ResetRequest, attempt: _Attempt, owner: str, correlation_id: str, *,
                  recovered: bool) -> None:
        """The reset's outcome recorded: its verdict, sealed password, follow-ups and messages in one transaction,
        then the messages posted; or the reset left to recovery (still running at the poll's bound)."""
        if attempt.lost:
            log.warning("request %s: its lease was taken before Graph was called (another replica recovers it); "
                        "nothing was set here (%s)", started.id, correlation_id)
            return
        if attempt.pending:
            self._leave_to_recovery(started, attempt, owner)
            return
        verdict, password = attempt.verdict, attempt.password
        final = verdict.final_state
        now = self.clock()
        with self.begin() as session:
            done = store.requests.transition(
                session, request_id=started.id, expected={RequestState.RESETTING}, to=final,
                changes={"verdict": verdict.kind.value, "graph_operation_id": attempt.operation_id,
                         "lease_owner": None, "lease_until": None},
                audit=AuditDraft(actor="system", action=_FINAL_ACTION[final], correlation_id=correlation_id,
                                 detail={"verdict": verdict.kind.value, "rule": verdict.rule or "",
                                         **({"recovered": True, "made_again": True} if recovered else {}),
                                         **dict(verdict.detail)}),
            )
            withheld = self._withheld(session, done, correlation_id) \
                if done is not None and final == RequestState.SUCCEEDED else None
            if done is not None and password is not None and final == RequestState.SUCCEEDED and withheld is None:
                store.sealed.seal(session, request_id=started.id, ciphertext=self.sealer.seal(password),
                                  expires_at=now + REVEAL_TTL, kind="tap" if started.tap else "password")
            if done is not None and final == RequestState.SUCCEEDED and not done.tap and self.followups:
                # In the same transaction: a success is never recorded without the checks that prove it.
                self.followups.plan(session, done, reset_at=started.updated_at, baseline=attempt.baseline,
                                    baseline_version=attempt.baseline_version, reminders=withheld is None)
            # In the same transaction too: a recorded verdict always has its messages, the Reveal button included,
            # however Slack answers right after the commit.
            ids = self.outbox.enqueue(session, [] if done is None else self._verdict_messages(
                done, verdict, correlation_id, withheld=withheld), now=now)
        forget_secret(password)
        del attempt, password  # the only copy now is the sealed one
        if done is None:
            return
        # The verdict first (what the thread waits for), then the request message's redraw; what Slack does not
        # take now, the outbox's scheduled run retries.
        self.outbox.deliver(ids, now=now)
        self._redraw(done)
        if done.state == RequestState.SUCCEEDED:
            self._after_success(done, correlation_id, withheld=withheld)

    def _account(self, req: ResetRequest) -> DirectoryUser | ResetbotError | None:
        """The target's AD account (None: gone), by objectGUID: a rename or move since the request cannot point
        the reset (or the unlock) elsewhere. AD's failure is kept, to become the reset's verdict."""
        try:
            return (self.directory.find_user(guid=req.target_guid) if req.target_guid
                    else self.directory.find_user(dn=req.target_dn) if req.target_dn else None)
        except ResetbotError as e:
            return e

    def _still_ours(self, request_id: str, owner: str) -> bool:
        """Renew the lease right before Graph is asked to set anything: False when another replica's recovery took
        it (the heartbeat missed long enough), or the database cannot say; either way this process sets nothing."""
        try:
            with self.begin() as session:
                return store.requests.renew_lease(session, request_id=request_id, owner=owner,
                                                  until=self.clock() + self.lease)
        except Exception as e:  # no answer is not a yes: recovery makes the reset once the lease lapses
            log.warning("request %s: could not confirm its lease before the reset (%s)", request_id,
                        type(e).__name__)
            return False

    def _refuse_before_reset(self, req: ResetRequest, reason: str, sentence: str, *, correlation_id: str) -> None:
        """The check made again before the reset says no: approved → cancelled (no reset started, nothing set),
        audited as a refusal, and said in the thread in the same transaction."""
        now = self.clock()
        with self.begin() as session:
            done = store.requests.transition(session, request_id=req.id, expected={RequestState.APPROVED},
                                             to=RequestState.CANCELLED, changes={"decided_at": now},
                                             audit=AuditDraft(actor="system", action=AuditAction.REFUSED,
                                                              correlation_id=correlation_id,
                                                              detail={"stage": "reset", "reason": reason}))
            ids = [] if done is None else self.outbox.enqueue(session, _in_thread(done, sentence,
                                                                                  origin="reset.refused"), now=now)
        if done is None:
            return  # another replica, or a cancel, moved it first
        log.info("request %s not reset: %s (%s)", req.id, reason, correlation_id)
        self._redraw(done)
        self.outbox.deliver(ids, now=now)

    @contextmanager
    def _heartbeat(self, request_id: str, owner: str) -> Iterator[None]:
        """Renew the reset's lease four times a lease (``LEASE_HEARTBEAT`` by default) while the block runs (Slack
        and Graph may keep it waiting far longer than any fixed bound: retries, Retry-After), so no sweep takes it
        for a stopped bot's. The beats are the poller's steps, not a thread of the reset's own. A renewal that fails
        (the database away for a moment) is logged and tried again at the next beat."""
        stop = threading.Event()
        every = (self.lease / HEARTBEATS_PER_LEASE).total_seconds()

        def beat() -> float | None:
            if stop.is_set():
                return None
            try:
                with self.begin() as session:
                    if not store.requests.renew_lease(session, request_id=request_id, owner=owner,
                                                      until=self.clock() + self.lease):
                        return None  # no longer resetting, or no longer ours
            except Exception as e:  # a missed beat must not end the reset; the next one may land
                log.warning("request %s: could not renew its reset's lease (%s)", request_id, type(e).__name__)
            return None if stop.is_set() else time.monotonic() + every

        self.poller.schedule(time.monotonic() + every, beat)
        try:
            yield
        finally:
            stop.set()

    def _leave_to_recovery(self, started: ResetRequest, attempt: _Attempt, owner: str) -> None:
        """Graph's operation was still running when the poll's bound ran out: the request stays ``resetting``, the
        password waits sealed (for as long as recovery may ask, then its ten minutes), the thread hears that Entra
        is still working, and the lease goes to the next sweep, which asks Graph how it ended."""
        now = self.clock()
        ids: list[int] = []
        with self.begin() as session:
            if store.requests.renew_lease(session, request_id=started.id, owner=owner, until=now):
                if attempt.password is not None:
                    store.sealed.seal(session, request_id=started.id, ciphertext=self.sealer.seal(attempt.password),
                                      expires_at=now + RECOVERY_GIVE_UP + REVEAL_TTL)
                ids = self.outbox.enqueue(session, _in_thread(started, messages.reset.reset_still_running(
                    started.target_display), origin="reset.pending"), now=now)
        forget_secret(attempt.password)
        log.info("request %s: Graph's operation %s is still running; the next sweep asks again", started.id,
                 attempt.operation_id)
        self.outbox.deliver(ids, now=now)

    def _withheld(self, session: Session, done: ResetRequest, cid: str) -> str | None:
        """Why nobody may read the password of this just-made reset (the target's "No", or a Cancel or Deny that
        came while it ran: both recorded on the row this transaction has locked), audited as discarded; None when
        it may be revealed."""
        if done.confirmation == "no":
            why: str | None = "target_said_no"
        elif any(e.action == AuditAction.RESET_WITHDRAWN
                 for e in store.audit.audit_for_request(session, request_id=done.id)):
            why = "withdrawn"
        else:
            return None
        store.audit.append_audit(session, draft=AuditDraft(
            actor="system", action=AuditAction.UNREVEALED_DISCARDED, request_id=done.id, correlation_id=cid,
            detail={"reason": why}))
        return why

    def _verdict_messages(self, done: ResetRequest, verdict: Verdict, cid: str, *,
                          withheld: str | None = None) -> list[OutboxMessage]:
        """The thread's verdict (or TAP line), then on success the Reveal button (it carries only the request id)
        and the target's DM with its "This wasn't me" button; in that order, which the outbox keeps. A password
        ``withheld`` (discarded unrevealed) gets no Reveal button: the verdict says why."""
        succeeded = verdict.final_state == RequestState.SUCCEEDED
        if done.tap and succeeded:
            issued = messages.reset.tap_issued(done.target_display, done.requester, TAP_LIFETIME_MINUTES,
                                               withheld=withheld)
            owed = _in_thread(done, issued, origin="reset.tap")
        else:
            owed = _in_thread(done, messages.reset.verdict_sentence(verdict, name=done.target_display,
                                                                    requester=done.requester, correlation_id=cid,
                                                                    to_target=self.delivers_to_target(done),
                                                                    withheld=withheld),
                              origin="reset.verdict")
        revealable = succeeded and not withheld
        to_target = self.delivers_to_target(done)
        if revealable and to_target:
            owed += _in_thread(done, messages.reset.only_target_reveals(done.target_slack_id or ""),
                               origin="reset.reveal")
        elif revealable:
            reveal = messages.reset.reveal_blocks(done.id)
            owed += _in_thread(done, reveal[0]["text"]["text"], blocks=reveal, origin="reset.reveal")
        if succeeded:
            owed += self._target_notice(done, reveal=revealable and to_target)
        return owed

    @staticmethod
    def _target_notice(done: ResetRequest, *, reveal: bool = False) -> list[OutboxMessage]:
        if not done.target_slack_id:
            return []
        return [dm_message(done.target_slack_id, messages.reset.target_reset_notice_text(done),
                           blocks=messages.reset.target_reset_notice_blocks(done, reveal=reveal),
                           origin="reset.target_dm", request_id=done.id)]

    def _reset(self, req: ResetRequest, cid: str, owner: str, account: DirectoryUser | ResetbotError | None, *,
               recovered: bool = False) -> _Attempt:
        """Up to Graph's 202: the attempt then carries what the poller follows. Never raises: every failure is a
        verdict, and a failure's text never holds the password (Graph's client scrubs it)."""
        try:
            if isinstance(account, ResetbotError):
                raise account
            ad = account
            if ad is None:
                gone = ResetOutcome(error=ErrorKind.OTHER, error_message="the AD account is gone")
                return _Attempt(classify(gone))
            if req.unlock and ad.locked_out:
                self._unlock(req, ad.object_guid, cid)
            policy = self.directory.effective_policy(ad)
            password = generate_temporary_password(policy, sam=ad.sam, display_name=ad.display_name)
            checks = precheck(password.get_secret_value(), policy, sam=ad.sam, display_name=ad.display_name)
            token = self.token_for(req.requester)
            if not self._still_ours(req.id, owner):
                forget_secret(password)
                return _Attempt(Verdict(VerdictKind.UNKNOWN), lost=True)
            accepted = self.graph.start_reset_password(access_token=token, user_id=req.target_entra_id,
                                                       new_password=password, client_request_id=cid)
            self._note_operation(req.id, accepted.location, baseline=ad.pwd_last_set_raw,
                                 baseline_version=ad.key_version)
        except ResetbotError as e:
            log.warning("reset %s failed before an outcome (%s): %s", req.id, cid, type(e).__name__)
            return _Attempt(classify(ResetOutcome(error=error_kind(e), error_code=getattr(e, "code", None),
                                                  error_message=str(e))))
        return _Attempt(Verdict(VerdictKind.UNKNOWN), following=self._following(
            req, owner, cid, accepted, token=token, password=password, checks=checks, ad=ad, recovered=recovered))

    def _following(self, req: ResetRequest, owner: str, cid: str, accepted: ResetAccepted, *, token: str,
                   password: SecretStr, checks: list[RuleBroken], ad: DirectoryUser, recovered: bool) -> _Following:
        """What the poller needs to carry the reset from Graph's 202 on: the first poll at exactly Graph's
        Retry-After when it sent one (its instruction), else after a short wait (``next_poll``)."""
        now = time.monotonic()
        first = next_poll(accepted.retry_after_s, None, looking_s=0.0)
        return _Following(started=req, owner=owner, correlation_id=cid, recovered=recovered, access_token=token,
                          location=accepted.location, password=password, checks=checks,
                          never_expires=ad.password_never_expires, baseline=ad.pwd_last_set_raw,
                          baseline_version=ad.key_version, give_up_at=now + self.poll_timeout_s,
                          poll_at=now + min(first.wait_s, self.poll_timeout_s),
                          renew_at=now + (self.lease / HEARTBEATS_PER_LEASE).total_seconds(),
                          interval_s=first.interval_s)

    def _follow(self, f: _Following) -> None:
        """Hand the operation to the poller; the reset counts as in flight (``wait_idle``) until its verdict."""
        self._enter()
        self.poller.schedule(min(f.poll_at, f.renew_at), lambda: self._poll_step(f))

    def _poll_step(self, f: _Following) -> float | None:
        """One turn of the poller for this reset: renew the lease when a heartbeat is due, poll Graph when its
        time has come, and conclude on a final status (or at the poll's bound: then recovery asks later). Returns
        when to run again, None once concluded. Never raises: a failure is a verdict or a missed beat, logged."""
        try:
            now = time.monotonic()
            if now >= f.renew_at:
                f.renew_at = self._beat(f, now)
            if now < f.poll_at:
                return min(f.poll_at, f.renew_at)
            f.first_look = now if f.first_look is None else f.first_look
            try:
                op, after = self.graph.poll_reset_operation(access_token=f.access_token, location=f.location,
                                                            client_request_id=f.correlation_id)
            except ResetbotError as e:
                log.warning("reset %s failed before an outcome (%s): %s", f.started.id, f.correlation_id,
                            type(e).__name__)
                self._conclude_following(f, _Attempt(classify(ResetOutcome(
                    error=error_kind(e), error_code=getattr(e, "code", None), error_message=str(e)))))
                return None
            if op.done:
                verdict = classify(ResetOutcome(status=op.status, status_detail=op.status_detail, precheck=f.checks,
                                                never_expires=f.never_expires))
                ok = verdict.final_state == RequestState.SUCCEEDED
                self._conclude_following(f, _Attempt(verdict, op.id, f.password if ok else None,
                                                     baseline=f.baseline, baseline_version=f.baseline_version))
                return None
            now = time.monotonic()
            if now >= f.give_up_at:  # not "failed": Graph may still make it, and recovery will ask
                log.warning("reset of %s still %s after %.1fs (client-request-id %s)", f.started.id, op.status,
                            self.poll_timeout_s, f.correlation_id)
                self._conclude_following(f, _Attempt(classify(ResetOutcome(status=op.status)), op.id, f.password,
                                                     baseline=f.baseline, baseline_version=f.baseline_version,
                                                     pending=True))
                return None
            step = next_poll(after, f.interval_s, looking_s=now - f.first_look)
            f.interval_s = step.interval_s
            f.poll_at = min(now + step.wait_s, f.give_up_at)
            return min(f.poll_at, f.renew_at)
        except Exception:  # the verdict's own transaction failed (the database away): recovery finishes it
            log.exception("request %s: its reset could not be concluded here; recovery takes it once its lease "
                          "lapses (%s)", f.started.id, f.correlation_id)
            self._forget(f)
            return None

    def _conclude_following(self, f: _Following, attempt: _Attempt) -> None:
        try:
            self._conclude(f.started, attempt, f.owner, f.correlation_id, recovered=f.recovered)
        finally:
            self._forget(f)

    def _forget(self, f: _Following) -> None:
        """The reset is no longer this poller's: its password leaves memory and it stops counting as in flight."""
        if not f.finished:
            f.finished = True
            forget_secret(f.password)
            self._leave()

    def _beat(self, f: _Following, now: float) -> float:
        """Renew the lease of a reset whose operation is followed; when the next beat is due (never again once
        the request is no longer ``resetting`` or no longer ours). A failed renewal is logged and tried again."""
        every = (self.lease / HEARTBEATS_PER_LEASE).total_seconds()
        try:
            with self.begin() as session:
                if not store.requests.renew_lease(session, request_id=f.started.id, owner=f.owner,
                                                  until=self.clock() + self.lease):
                    return math.inf  # no longer resetting, or no longer ours: no more beats
        except Exception as e:  # a missed beat must not end the reset; the next one may land
            log.warning("request %s: could not renew its reset's lease (%s)", f.started.id, type(e).__name__)
        return now + every

    def _issue_tap(self, req: ResetRequest, cid: str, owner: str) -> _Attempt:
        """``--tap``: a Temporary Access Pass instead of a password (cloud only: nothing to write back). Made with
        the agent's (or service identity's) delegated token, like the password: an app permission would be checked
        against no role and mint a pass, which satisfies MFA, for anyone. Never raises."""
        try:
            token = self.token_for(req.requester)
            if not self._still_ours(req.id, owner):
                return _Attempt(Verdict(VerdictKind.UNKNOWN), lost=True)
            tap = self.graph.create_temporary_access_pass(user_id=req.target_entra_id,
                                                          lifetime_minutes=TAP_LIFETIME_MINUTES, usable_once=True,
                                                          access_token=token, client_request_id=cid)
        except ResetbotError as e:
            log.warning("TAP for %s failed (%s): %s", req.id, cid, type(e).__name__)
            return _Attempt(classify(ResetOutcome(error=error_kind(e), error_code=getattr(e, "code", None),
                                                  error_message=str(e))))
        self._note_tap(req.id, tap.id)
        return _Attempt(Verdict(kind=VerdictKind.SUCCEEDED), tap.id, tap.temporary_access_pass)

    def _note_tap(self, request_id: str, method_id: str) -> None:
        """Record the issued pass's id at once (``store.requests.note_tap``), so that recovery can delete a pass
        whose process stopped before its verdict. A failure is logged: the verdict records the id anyway."""
        try:
            with self.begin() as session:
                store.requests.note_tap(session, request_id=request_id, method_id=method_id)
        except Exception as e:  # the verdict's own transaction records it too
            log.warning("request %s: could not record its TAP's id before the verdict (%s)", request_id,
                        type(e).__name__)

    def _note_operation(self, request_id: str, location: str, *, baseline: int | None,
                        baseline_version: int | None) -> None:
        with self.begin() as session:
            store.requests.note_operation(session, request_id=request_id, location=location, baseline=baseline,
                                          baseline_version=baseline_version)

    def _unlock(self, req: ResetRequest, guid: str, cid: str) -> None:
        """Clear the lockout before the reset (writeback refuses a locked-out account), on the account with this
        objectGUID. A failure is said in the thread and the reset goes on: its verdict then says it is locked."""
        now = self.clock()
        try:
            self.directory.unlock(guid=guid)
        except ResetbotError as e:
            with self.begin() as session:
                failed = messages.requests.unlock_failed(req.target_display, str(e))
                ids = self.outbox.enqueue(session, _in_thread(req, failed, origin="reset.unlock"), now=now)
        else:
            with self.begin() as session:
                store.audit.append_audit(session, draft=AuditDraft(actor="system", action=AuditAction.UNLOCKED,
                                                                   request_id=req.id, correlation_id=cid))
                ids = self.outbox.enqueue(session, _in_thread(req, messages.requests.unlocked(req.target_display),
                                                              origin="reset.unlock"), now=now)
        self.outbox.deliver(ids, now=now)

    # --- helpers -------------------------------------------------------------------------------------------------

    def _redraw(self, req: ResetRequest) -> None:
        """Redraw the request message with its new state. Never raises: it used to, on a Slack failure, and the
        verdict behind it was then never said; a failed redraw is only a stale message until the next one."""
        if not (req.channel_id and req.thread_ts):
            return
        try:
            group_id = self.notifier.group_id(req.approver_group) if req.approver_group else None
            self.notifier.update(req.channel_id, req.thread_ts, messages.requests.request_text(req),
                                 blocks=messages.requests.request_blocks(
                                     req, approvals=[], group_id=group_id,
                                     caller_line=messages.verification.state_line(req, required=False)
                                     if req.verification != "none" else None))
        except SlackUnavailableError as e:
            log.warning("request %s: its message could not be redrawn (Slack: %s); the thread still hears the "
                        "outcome", req.id, e.code)


def _in_thread(req: ResetRequest, text: str, *, origin: str,
               blocks: messages.format.Blocks | None = None) -> list[OutboxMessage]:
    """A reply in the request's thread, as an outbox message (none for a request without a thread)."""
    if not (req.channel_id and req.thread_ts):
        return []
    return [thread_message(req.channel_id, req.thread_ts, text, blocks=blocks, origin=origin, request_id=req.id)]
