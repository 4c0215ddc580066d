"""Performing an approved reset: approved → resetting → succeeded | rejected | failed (spec section 4).

The password is generated for the target's effective policy, set in Entra ID with Graph ``resetPassword``
(the agent's own delegated token, so Entra's role rules apply), and writeback carries it to AD, whose answer
comes back in the operation. The verdict goes to the thread in plain words. The password itself only ever
exists in this process's memory, in the sealed (encrypted) row until its one reveal, and in the reveal
modal: never in a message, a log line, the audit trail, an outbox row or an exception.

What the reset says (the "resetting" line, the verdict or TAP line, the Reveal button, the target's DM with its
"This wasn't me" button, "revealed", the security alert, "wiped") is written to the outbox in the transaction that
decides it and delivered right after the commit (``bot.services.outbox``): a Slack failure at the verdict delays
those messages, in order, until Slack is back; it no longer loses them (the thread never hearing the verdict, the
requester never getting the Reveal button while the password sat sealed). Only the redraw of the request message
(chat.update) stays direct: it is idempotent, so a failed one is logged and the next redraw fixes it.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import SecretStr
from sqlmodel import Session

from bot import messages, store
from bot.clients.directory import Directory
from bot.clients.graph import Graph
from bot.clients.slack_notify import Notifier
from bot.db import SessionFactory
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.followup_rules import FollowUpKind
from bot.domain.lifecycle import RequestState
from bot.domain.rules import Refusal
from bot.domain.verdict import ErrorKind, ResetOutcome, Verdict, VerdictKind, classify, error_kind
from bot.errors import ResetbotError, SlackUnavailableError
from bot.ids import new_correlation_id
from bot.logs import REVEALED_SECRET_TTL_S, forget_secret, remember_secret
from bot.models import OutboxMessage, ResetRequest, utcnow
from bot.policy import generate_temporary_password, phonetic, precheck
from bot.services.outbox import Outbox, channel_message, dm_message, thread_message
from bot.services.sealing import Sealer

log = logging.getLogger(__name__)

REVEAL_TTL = timedelta(minutes=10)
#: How long a Reveal click holds the sealed password while Slack opens the modal: longer than the Web API
#: client's timeout (30 s) with a retry, so a slow views.open is never overtaken by a second click.
REVEAL_CLAIM = timedelta(minutes=2)
#: Added to twice the poll bound before a ``resetting`` request counts as left behind by a stopped bot.
RECOVERY_MARGIN = timedelta(seconds=10)
#: How long recovery keeps asking Graph (unreachable, or the operation still running) before it says "unknown".
RECOVERY_GIVE_UP = timedelta(minutes=30)
#: A ``resetting`` request's lease: renewed every ``LEASE_HEARTBEAT`` while its reset runs in a live process
#: (Graph's retries and Retry-After waits included), so only a reset whose process stopped is recovered, about
#: a minute after it stopped. Four missed heartbeats before anyone else may take it.
LEASE = timedelta(seconds=60)
LEASE_HEARTBEAT = timedelta(seconds=15)
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


@dataclass(frozen=True, slots=True)
class Reveal:
    """A reveal under way: the modal to open (it holds the password: never logged), and the claim on the sealed
    row that ``ResetService.reveal_shown`` or ``reveal_not_shown`` settles."""

    request_id: str
    claimed_until: datetime
    modal: dict[str, object] = field(repr=False)


@dataclass
class ResetService:
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
    followups: FollowUpPlanner | None = None
    #: The request rules' check made again right before the credential is set (``RequestService.recheck``): None
    #: to go on, or (reason, the thread's sentence) and nothing is set.
    recheck: Callable[[ResetRequest], tuple[str, str] | None] | None = None
    poll_timeout_s: float = 60.0
    clock: Callable[[], datetime] = field(default=utcnow)
    _in_flight: int = field(default=0, init=False, repr=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no reset is running (every verdict written, and posted unless Slack failed: then the outbox
        owes it), or ``timeout``; True when idle. What a graceful
        shutdown waits for before it stops, and what tests wait for before the next story begins."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def perform(self, req: ResetRequest, *, correlation_id: str) -> None:
        """Run the reset of an approved request; only the caller whose compare-and-set wins does anything."""
        with self._idle:
            self._in_flight += 1
        try:
            self._perform(req, correlation_id)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _perform(self, req: ResetRequest, correlation_id: str) -> None:
        refused = self.recheck(req) if self.recheck is not None else None
        if refused is not None:
            self._refuse_before_reset(req, *refused, correlation_id=correlation_id)
            return
        now = self.clock()
        owner = secrets.token_hex(8)
        with self.begin() as session:
            started = store.requests.transition(session, request_id=req.id, expected={RequestState.APPROVED},
                                                to=RequestState.RESETTING,
                                                changes={"lease_owner": owner, "lease_until": now + LEASE},
                                                audit=AuditDraft(actor="system", action=AuditAction.RESET_STARTED,
                                                                 correlation_id=correlation_id))
            ids = [] if started is None else self.outbox.enqueue(session, _in_thread(
                started, messages.reset.tap_started(started.target_display) if started.tap
                else messages.reset.reset_started(started.target_display), origin="reset.started"), now=now)
        if started is None:
            return
        self.outbox.deliver(ids, now=now)
        with self._heartbeat(started.id, owner):
            attempt = self._issue_tap(started, correlation_id) if started.tap else self._reset(started, correlation_id)
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
                                         **dict(verdict.detail)}),
            )
            if done is not None and password is not None and final == RequestState.SUCCEEDED:
                store.sealed.seal(session, request_id=started.id, ciphertext=self.sealer.seal(password),
                                  expires_at=now + REVEAL_TTL, kind="tap" if started.tap else "password")
            if done is not None and final == RequestState.SUCCEEDED and not done.tap and self.followups:
                # In the same transaction: a success is never recorded without the checks that prove it.
                self.followups.plan(session, done, reset_at=started.updated_at, baseline=attempt.baseline,
                                    baseline_version=attempt.baseline_version)
            # In the same transaction too: a recorded verdict always has its messages, the Reveal button included,
            # however Slack answers right after the commit.
            ids = self.outbox.enqueue(session, [] if done is None else self._verdict_messages(done, verdict,
                                                                                               correlation_id), now=now)
        forget_secret(password)
        del attempt, password  # the only copy now is the sealed one
        if done is None:
            return
        self._redraw(done)
        self.outbox.deliver(ids, now=now)  # what Slack does not take now, the outbox's scheduled run retries

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
        """Renew the reset's lease every ``LEASE_HEARTBEAT`` while the block runs (Graph may keep it waiting far
        longer than any fixed bound: retries, Retry-After), so no sweep takes it for a stopped bot's. A renewal
        that fails (the database away for a moment) is logged and tried again at the next beat."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(LEASE_HEARTBEAT.total_seconds()):
                try:
                    with self.begin() as session:
                        if not store.requests.renew_lease(session, request_id=request_id, owner=owner,
                                                          until=self.clock() + LEASE):
                            return  # no longer resetting, or no longer ours
                except Exception as e:  # a missed beat must not end the reset; the next one may land
                    log.warning("request %s: could not renew its reset's lease (%s)", request_id, type(e).__name__)

        thread = threading.Thread(target=beat, name=f"lease-{request_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

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

    def _verdict_messages(self, done: ResetRequest, verdict: Verdict, cid: str) -> list[OutboxMessage]:
        """The thread's verdict (or TAP line), then on success the Reveal button (it carries only the request id)
        and the target's DM with its "This wasn't me" button; in that order, which the outbox keeps."""
        succeeded = verdict.final_state == RequestState.SUCCEEDED
        if done.tap and succeeded:
            issued = messages.reset.tap_issued(done.target_display, done.requester, TAP_LIFETIME_MINUTES)
            owed = _in_thread(done, issued, origin="reset.tap")
        else:
            owed = _in_thread(done, messages.reset.verdict_sentence(verdict, name=done.target_display,
                                                                    requester=done.requester, correlation_id=cid),
                              origin="reset.verdict")
        if succeeded:
            reveal = messages.reset.reveal_blocks(done.id)
            owed += _in_thread(done, reveal[0]["text"]["text"], blocks=reveal, origin="reset.reveal")
            owed += self._target_notice(done)
        return owed

    @staticmethod
    def _target_notice(done: ResetRequest) -> list[OutboxMessage]:
        if not done.target_slack_id:
            return []
        return [dm_message(done.target_slack_id, messages.reset.target_reset_notice_text(done),
                           blocks=messages.reset.target_reset_notice_blocks(done), origin="reset.target_dm",
                           request_id=done.id)]

    def _reset(self, req: ResetRequest, cid: str) -> _Attempt:
        """Never raises: every failure is a verdict, and a failure's text never holds the password (Graph's
        client scrubs it)."""
        try:
            # By objectGUID: a rename or move since the request cannot point the reset (or the unlock) elsewhere.
            ad = (self.directory.find_user(guid=req.target_guid) if req.target_guid
                  else self.directory.find_user(dn=req.target_dn) if req.target_dn else None)
            if ad is None:
                gone = ResetOutcome(error=ErrorKind.OTHER, error_message="the AD account is gone")
                return _Attempt(classify(gone))
            if req.unlock and ad.locked_out:
                self._unlock(req, ad.object_guid, cid)
            policy = self.directory.effective_policy(ad)
            password = generate_temporary_password(policy, sam=ad.sam, display_name=ad.display_name)
            checks = precheck(password.get_secret_value(), policy, sam=ad.sam, display_name=ad.display_name)
            token = self.token_for(req.requester)
            op = self.graph.reset_password(access_token=token, user_id=req.target_entra_id, new_password=password,
                                           poll_timeout_s=self.poll_timeout_s, client_request_id=cid,
                                           on_accepted=lambda location: self._note_operation(
                                               req.id, location, baseline=ad.pwd_last_set_raw,
                                               baseline_version=ad.key_version))
        except ResetbotError as e:
            log.warning("reset %s failed before an outcome (%s): %s", req.id, cid, type(e).__name__)
            return _Attempt(classify(ResetOutcome(error=error_kind(e), error_code=getattr(e, "code", None),
                                                  error_message=str(e))))
        if not op.done:  # not "failed": Graph may still make it, and recovery will ask
            return _Attempt(classify(ResetOutcome(status=op.status)), op.id, password, baseline=ad.pwd_last_set_raw,
                            baseline_version=ad.key_version, pending=True)
        verdict = classify(ResetOutcome(status=op.status, status_detail=op.status_detail, precheck=checks,
                                        never_expires=ad.password_never_expires))
        ok = verdict.final_state == RequestState.SUCCEEDED
        return _Attempt(verdict, op.id, password if ok else None, baseline=ad.pwd_last_set_raw,
                        baseline_version=ad.key_version)

    def _issue_tap(self, req: ResetRequest, cid: str) -> _Attempt:
        """``--tap``: a Temporary Access Pass instead of a password (cloud only: nothing to write back). Made with
        the agent's (or service identity's) delegated token, like the password: an app permission would be checked
        against no role and mint a pass, which satisfies MFA, for anyone. Never raises."""
        try:
            tap = self.graph.create_temporary_access_pass(user_id=req.target_entra_id,
                                                          lifetime_minutes=TAP_LIFETIME_MINUTES, usable_once=True,
                                                          access_token=self.token_for(req.requester),
                                                          client_request_id=cid)
        except ResetbotError as e:
            log.warning("TAP for %s failed (%s): %s", req.id, cid, type(e).__name__)
            return _Attempt(classify(ResetOutcome(error=error_kind(e), error_code=getattr(e, "code", None),
                                                  error_message=str(e))))
        return _Attempt(Verdict(kind=VerdictKind.SUCCEEDED), tap.id, tap.temporary_access_pass)

    def _note_operation(self, request_id: str, location: str, *, baseline: int | None,
                        baseline_version: int | None) -> None:
        with self.begin() as session:
            store.requests.note_operation(session, request_id=request_id, location=location, baseline=baseline,
                                          baseline_version=baseline_version)

    # --- recovery of resets a stopped bot left half-way ------------------------------------------------------

    @property
    def stale_after(self) -> timedelta:
        """How long after its start a ``resetting`` request must be a dead bot's: twice the poll bound (a live
        reset is over by then, token and LDAP included), plus a margin."""
        return timedelta(seconds=2 * self.poll_timeout_s) + RECOVERY_MARGIN

    def recover_interrupted(self, *, now: datetime | None = None) -> int:
        """Finish what a stopped bot left half-way. A request ``resetting`` (killed while Graph was working): ask
        Graph how the stored operation ended and record that verdict, or say the reset was interrupted when no
        operation was stored (the bot died before Graph accepted it, so whether it happened is unknown). A request
        ``approved`` whose reset never began: make it now, as its approver asked. Returns how many were taken on
        here; the compare-and-sets make one replica do each."""
        now = now or self.clock()
        with self.begin() as session:
            resetting = store.requests.stuck_requests(session, state=RequestState.RESETTING,
                                                      since_before=now - self.stale_after, now=now)
            approved = store.requests.stuck_requests(session, state=RequestState.APPROVED,
                                                     since_before=now - self.stale_after, now=now)
        done = sum(self._recover(req, now) for req in resetting)
        for req in approved:
            log.info("resuming the approved reset %s, left unstarted by a stopped bot", req.id)
            self.perform(req, correlation_id=new_correlation_id())
        return done + len(approved)

    def _recover(self, stuck: ResetRequest, now: datetime) -> int:
        cid = new_correlation_id()
        owner = secrets.token_hex(8)
        with self.begin() as session:
            req = store.requests.claim_lease(session, request_id=stuck.id, owner=owner, now=now, until=now + LEASE,
                                             since_before=now - self.stale_after)
        if req is None:
            return 0  # its holder renewed the lease meanwhile, or another replica is on it
        verdict = Verdict(VerdictKind.UNKNOWN, None, {"marker": "recovery", "reason": "interrupted"})
        operation_id = None
        if req.operation_location:
            try:
                op = self.graph.get_reset_operation(access_token=self.token_for(req.requester),
                                                    location=req.operation_location, client_request_id=cid)
            except ResetbotError as e:
                if now - req.updated_at < RECOVERY_GIVE_UP:
                    log.warning("recovering %s: Graph could not say how its reset ended (%s); trying again later",
                                req.id, type(e).__name__)
                    self._hand_back(req.id, owner, now)
                    return 0
                op = None
            if op is not None and not op.done and now - req.updated_at < RECOVERY_GIVE_UP:
                self._hand_back(req.id, owner, now)
                return 0  # Graph is still working on it: look again at the next sweep
            if op is not None and op.done:
                verdict = classify(ResetOutcome(status=op.status, status_detail=op.status_detail))
                operation_id = op.id
        final = verdict.final_state
        ids: list[int] = []
        with self.begin() as session:
            done = store.requests.transition(
                session, request_id=req.id, expected={RequestState.RESETTING}, to=final,
                changes={"verdict": verdict.kind.value, "graph_operation_id": operation_id, "lease_owner": None,
                         "lease_until": None},
                audit=AuditDraft(actor="system", action=_FINAL_ACTION[final], correlation_id=cid,
                                 detail={"verdict": verdict.kind.value, "rule": verdict.rule or "",
                                         "recovered": True, **dict(verdict.detail)}),
            )
            # A reset whose poll ran out while Graph worked left its password sealed: its ten minutes to reveal run
            # from this verdict. One a stopped bot left has none (it died with the process).
            revealable = done is not None and final == RequestState.SUCCEEDED and store.sealed.extend_sealed(
                session, request_id=req.id, expires_at=now + REVEAL_TTL)
            if done is not None and final == RequestState.SUCCEEDED and self.followups:
                # Prove it landed; remind the user only of a password someone can reveal.
                self.followups.plan(session, done, reset_at=req.updated_at, baseline=req.baseline_pwd_last_set,
                                    baseline_version=req.baseline_key_version, reminders=revealable)
            if done is not None and revealable:
                ids = self.outbox.enqueue(session, self._verdict_messages(done, verdict, cid), now=now)
            elif done is not None and final == RequestState.SUCCEEDED:
                ids = self.outbox.enqueue(session, _in_thread(
                    done, messages.reset.reset_recovered_unrevealable(done.target_display), origin="reset.recovered")
                    + self._target_notice(done), now=now)
            elif done is not None:
                store.sealed.discard_sealed(session, request_id=req.id)  # it never took effect
                ids = self.outbox.enqueue(session, _in_thread(
                    done, messages.reset.verdict_sentence(verdict, name=done.target_display, requester=done.requester,
                                                          correlation_id=cid), origin="reset.recovered"), now=now)
        if done is None:
            return 0
        log.info("recovered %s left resetting by a stopped bot: %s (%s)", req.id, verdict.kind.value, cid)
        self._redraw(done)
        self.outbox.deliver(ids, now=now)
        return 1

    def _hand_back(self, request_id: str, owner: str, now: datetime) -> None:
        """Recovery could not finish it yet (Graph still working, or out of reach): the next sweep may take it."""
        with self.begin() as session:
            store.requests.renew_lease(session, request_id=request_id, owner=owner, until=now)

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

    # --- reveal, the target's "This wasn't me", the wipe ------------------------------------------------

    def reveal(self, *, request_id: str, actor: str, correlation_id: str) -> tuple[Reveal | None, str | None]:
        """(reveal, None) for the requester's one reveal: the modal to open, its password claimed but not spent
        (``reveal_shown`` spends it once Slack opened the modal, ``reveal_not_shown`` gives it back); (None,
        sentence) for anyone or anything else. A password this process cannot decrypt (sealed by a replica with
        another key) is given back at once: pressing Reveal again may reach the replica that can."""
        with self.begin() as session:
            req = store.requests.get_request(session, request_id=request_id)
        if req is None:
            return None, messages.requests.request_not_found(request_id)
        if actor != req.requester:
            self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                                   correlation_id=correlation_id,
                                   detail={"attempted": "reveal", "reason": Refusal.ONLY_REQUESTER_REVEALS}))
            return None, messages.requests.refusal(Refusal.ONLY_REQUESTER_REVEALS)
        if self.agents_group and actor not in self.notifier.group_members(self.agents_group, fresh=True):
            self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                                   correlation_id=correlation_id,
                                   detail={"attempted": "reveal", "reason": Refusal.REQUESTER_NOT_AN_AGENT}))
            return None, messages.reset.reveal_not_an_agent()
        if req.state != RequestState.SUCCEEDED:  # a password sealed while Graph still works waits for its verdict
            return None, messages.reset.reveal_gone()
        now = self.clock()
        until = now + REVEAL_CLAIM
        with self.begin() as session:
            taken = store.sealed.claim_sealed(session, request_id=req.id, now=now, until=until)
            busy = taken is None and store.sealed.is_claimed(session, request_id=req.id, now=now)
        if taken is None:
            return None, messages.reset.reveal_in_progress() if busy else messages.reset.reveal_gone()
        kind, ciphertext = taken
        secret = self.sealer.unseal(ciphertext)
        if secret is None:
            log.warning("request %s: the temporary password cannot be unsealed here (sealed with another "
                        "RESETBOT_SEALING_KEY); it stays sealed", req.id)
            self._give_back(req.id, until, actor, correlation_id, reason="unsealable")
            return None, messages.reset.reveal_unsealable()
        remember_secret(secret, ttl=REVEALED_SECRET_TTL_S)
        modal = messages.reset.reveal_modal(name=req.target_display, password=secret, spelled=phonetic(secret),
                                            must_change=req.verdict == VerdictKind.SUCCEEDED, tap=kind == "tap")
        return Reveal(req.id, until, modal), None

    def reveal_shown(self, shown: Reveal, *, actor: str, correlation_id: str) -> None:
        """Slack opened the modal: now the password is spent, "revealed" audited and said in the thread."""
        now = self.clock()
        with self.begin() as session:
            if not store.sealed.spend_sealed(session, request_id=shown.request_id, claimed_until=shown.claimed_until):
                return  # held past its claim and taken by another click meanwhile: that one records it
            store.audit.append_audit(session, draft=AuditDraft(actor=actor, action=AuditAction.REVEALED,
                                                               request_id=shown.request_id,
                                                               correlation_id=correlation_id))
            req = store.requests.get_request(session, request_id=shown.request_id)
            ids = self.outbox.enqueue(session, [] if req is None else _in_thread(
                req, messages.reset.revealed(actor), origin="reset.revealed"), now=now)
        self.outbox.deliver(ids, now=now)

    def reveal_not_shown(self, shown: Reveal, *, actor: str, correlation_id: str, error: str) -> str:
        """Slack did not open the modal (an expired trigger_id, Slack down): the password stays sealed, the next
        click may show it; the sentence for the requester."""
        log.warning("request %s: Slack did not open the reveal modal (%s); the password stays sealed",
                    shown.request_id, error)
        self._give_back(shown.request_id, shown.claimed_until, actor, correlation_id, reason=error)
        return messages.reset.reveal_not_shown(error)

    def _give_back(self, request_id: str, claimed_until: datetime, actor: str, correlation_id: str, *,
                   reason: str) -> None:
        with self.begin() as session:
            store.sealed.release_claim(session, request_id=request_id, claimed_until=claimed_until)
            store.audit.append_audit(session, draft=AuditDraft(actor=actor, action=AuditAction.REVEAL_FAILED,
                                                               request_id=request_id, correlation_id=correlation_id,
                                                               detail={"reason": reason}))

    def not_me(self, *, request_id: str, actor: str, correlation_id: str) -> str:
        """The target disowns the reset: audited, and said to the security channel and the thread in the same
        transaction (an alert that a password was changed behind someone's back must not be lost to a Slack
        blip)."""
        now = self.clock()
        with self.begin() as session:
            req = store.requests.get_request(session, request_id=request_id)
            if req is None or actor != req.target_slack_id:
                return messages.requests.refusal(Refusal.ONLY_TARGET_CONFIRMS)
            store.audit.append_audit(session, draft=AuditDraft(actor=actor, action=AuditAction.RESET_DISOWNED,
                                                               request_id=req.id, correlation_id=correlation_id))
            alert = messages.reset.security_reset_disowned(req)
            owed = [channel_message(self.security_channel, alert, origin="reset.security", request_id=req.id)] \
                if self.security_channel else []
            ids = self.outbox.enqueue(session, owed + _in_thread(req, alert, origin="reset.disowned"), now=now)
        self.outbox.deliver(ids, now=now)
        return messages.reset.not_me_answered()

    def wipe_expired(self, *, now: datetime | None = None) -> int:
        """Wipe sealed passwords nobody revealed within their time; the thread says so."""
        now = now or self.clock()
        with self.begin() as session:
            wiped = store.sealed.wipe_expired_secrets(session, now=now)
            owed: list[OutboxMessage] = []
            for request_id in wiped:
                store.audit.append_audit(session, draft=AuditDraft(actor="scheduler",
                                                                   action=AuditAction.UNREVEALED_WIPED,
                                                                   request_id=request_id))
                # Nobody was told the password: reminding the user to sign in with it would only confuse them.
                store.followups.skip_followups(session, request_id=request_id, kind=FollowUpKind.REPLACED, now=now)
                req = store.requests.get_request(session, request_id=request_id)
                if req is not None:
                    owed += _in_thread(req, messages.reset.secret_wiped(), origin="reset.wiped")
            ids = self.outbox.enqueue(session, owed, now=now)
        self.outbox.deliver(ids, now=now)
        return len(wiped)

    # --- helpers -------------------------------------------------------------------------------------------------

    def _audit(self, draft: AuditDraft) -> None:
        with self.begin() as session:
            store.audit.append_audit(session, draft=draft)

    def _redraw(self, req: ResetRequest) -> None:
        """Redraw the request message with its new state. Never raises: it used to, on a Slack failure, and the
        verdict behind it was then never said; a failed redraw is only a stale message until the next one."""
        if not (req.channel_id and req.thread_ts):
            return
        try:
            group_id = self.notifier.group_id(req.approver_group) if req.approver_group else None
            self.notifier.update(req.channel_id, req.thread_ts, messages.requests.request_text(req),
                                 blocks=messages.requests.request_blocks(req, approvals=[], group_id=group_id))
        except SlackUnavailableError as e:
            log.warning("request %s: its message could not be redrawn (Slack: %s); the thread still hears the "
                        "outcome", req.id, e.code)


def _in_thread(req: ResetRequest, text: str, *, origin: str,
               blocks: messages.format.Blocks | None = None) -> list[OutboxMessage]:
    """A reply in the request's thread, as an outbox message (none for a request without a thread)."""
    if not (req.channel_id and req.thread_ts):
        return []
    return [thread_message(req.channel_id, req.thread_ts, text, blocks=blocks, origin=origin, request_id=req.id)]
