"""Verifying the caller of a request: starting a method, taking a code, following a Duo push, the call-back's
attestation, and what a verification makes happen: the reset starts once the request is approved too, except that
approvals given before a call-back (the agent's word, not the caller's proof) are taken back and the approvers asked
again (``bot.domain.verification.earlier_approvals_void``).

Every attempt and outcome is audited with its method; a code is generated here, sealed at once, sent only in the
target's DM and never written anywhere in clear (not the audit, a log, the thread or an exception). Each change is
a compare-and-set on the request's verification columns, so a double submit, two replicas or a superseded attempt
record one outcome. A Duo push is followed on the service's own small pool, never on a Slack handler's thread.

"Report fraud" (the person pressed *Report* on a Duo push) is the target saying someone is impersonating them, and
counts as their "No" whatever state the request is in by the time the push is answered (with verification not
required, the agent may send a push that is answered only after the approval, or once the reset ran):

- ``pending_approval`` (waiting for its approver, or approved and waiting for its caller) or ``approved`` (its reset
  not begun): cancelled; the compare-and-set to ``resetting`` then fails, so no reset starts;
- ``resetting``: Entra cannot be stopped; the "No" is recorded on the row, so the verdict withholds the password (or
  TAP) and the reset is contained once made (``ResetContainment._after_success``);
- ``succeeded``: contained at once, as "This wasn't me" is (an unrevealed password discarded, sessions revoked, a TAP
  deleted, Scramble password offered to security);
- anything else (denied, cancelled, expired, failed, rejected): nothing to stop.

Each time the verification is blocked and audited (``verify_failed``, outcome ``fraud``, then ``cancelled`` or
``target_disowned`` with the state found), the thread is told, and so is the security channel: the request, its
thread's link, the state it was in and whether the password was changed. The outcome is recorded whatever the
request's state (``set_verification(any_state=True)``): before, a push answered after the approval matched no row
and the report was silently lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr

from bot import messages, store
from bot.clients.duo import DuoAuth
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.groups import MEMBERS_FOR_A_DECISION_S
from bot.domain.lifecycle import RequestState
from bot.domain.verification import (
    CODE_TTL,
    DUO_PUSH_WAIT,
    MAX_CODE_TRIES,
    VerifyRefusal,
    VerifyState,
    code_matches,
    earlier_approvals_void,
    method_refusal,
    new_code,
    start_refusal,
)
from bot.errors import ResetbotError
from bot.ids import new_correlation_id
from bot.logs import remember_secret
from bot.models import ResetRequest
from bot.services.request_decisions import _NOT_STARTED, SYSTEM, RequestDecisions
from bot.services.sealing import Sealer
from bot.settings import VerifyMethod

log = logging.getLogger("bot.services.verification")

#: A new attempt may replace one under way, or follow a failed one.
_MAY_START = frozenset({VerifyState.NONE, VerifyState.FAILED, VerifyState.PENDING})
#: Where a Duo "Report" on a push the agent has since replaced still blocks the verification (``_duo_fraud``).
_NOT_BLOCKED = frozenset(set(VerifyState) - {VerifyState.BLOCKED})
#: Duo's auth_status errors tolerated in a row before the push counts as unknown.
_DUO_ERRORS_TOLERATED = 3
#: How long past its deadline an attempt must be before the sweep ends it (the live follower ends it first).
_STALE_MARGIN = timedelta(seconds=60)


class RequestVerification(RequestDecisions):
    """The caller's verification, one method at a time."""

    # RequestService's fields these methods read (declared here for the type checker; the dataclass sets them).
    clock: Callable[[], datetime]
    sealer: Sealer | None
    duo: DuoAuth | None
    phones_of: Callable[[str], Sequence[str]] | None
    duo_pool: ThreadPoolExecutor
    stopping: threading.Event

    # --- starting ----------------------------------------------------------------------------------------------

    def verification_refusal(self, req: ResetRequest, actor: str, method: str,
                             correlation_id: str | None = None) -> str | None:
        """None when ``actor`` may start ``method`` on ``req`` now; otherwise the sentence, audited."""
        try:
            chosen = VerifyMethod(method)
        except ValueError:
            chosen = None
        reason: VerifyRefusal | None
        if actor != req.requester:
            reason = VerifyRefusal.ONLY_REQUESTER_VERIFIES
        elif req.state != RequestState.PENDING_APPROVAL:
            reason = VerifyRefusal.NOT_PENDING
        elif not self._still_an_agent(actor):
            reason = VerifyRefusal.REQUESTER_NOT_AN_AGENT
        elif chosen is None or (chosen == VerifyMethod.DUO_PUSH and self.duo is None):
            reason = VerifyRefusal.METHOD_NOT_ALLOWED
        else:
            reason = start_refusal(VerifyState(req.verification), req.verify_tries) or method_refusal(
                chosen, allowed=self.rules.verify_methods, protected=bool(req.protected),
                target_in_slack=req.target_slack_id is not None)
        if reason is None:
            return None
        self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                               correlation_id=correlation_id, detail={
                                   "attempted": "verify", "method": method[:32], "reason": reason}))
        return messages.verification.refusal(reason, req, method)

    def _still_an_agent(self, actor: str) -> bool:
        """Whether ``actor`` is in the agents' user group right now (asked of Slack, as an approval asks it): an
        agent taken out of the helpdesk mid-request may not verify its caller, which is half of getting it reset."""
        return actor in self.notifier.group_members(self.rules.agents_group, max_age=MEMBERS_FOR_A_DECISION_S)

    def _refuse_verify(self, req: ResetRequest, actor: str, reason: VerifyRefusal, attempted: str,
                       correlation_id: str | None = None) -> str:
        self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                               correlation_id=correlation_id, detail={"attempted": attempted, "reason": reason}))
        return messages.verification.refusal(reason, req)

    def start_verification(self, *, request_id: str, actor: str, method: str, correlation_id: str) -> str | None:
        """Start ``method`` (not ``callback``, which needs its modal: ``callback_modal``); the agent's sentence."""
        req, _ = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        refused = self.verification_refusal(req, actor, method, correlation_id)
        if refused:
            return refused
        chosen = VerifyMethod(method)
        if chosen == VerifyMethod.SLACK_CODE:
            return self._send_code(req, actor, correlation_id)
        if chosen == VerifyMethod.DUO_PUSH:
            return self._send_push(req, actor, correlation_id)
        if chosen == VerifyMethod.SLACK_CONFIRM:
            return self._ask_target(req, actor, correlation_id)
        return messages.verification.refusal(VerifyRefusal.METHOD_NOT_ALLOWED, req, method)

    def _begin(self, req: ResetRequest, actor: str, method: VerifyMethod, correlation_id: str,
               **changes: object) -> ResetRequest | None:
        """A new attempt. Wrong codes count across the request's attempts (a new code does not give three more
        tries), so the count read with ``req`` must still be the row's."""
        values: dict[str, object] = {"verification": VerifyState.PENDING, "verify_method": method,
                                     "verified_by": actor, "verify_tries": req.verify_tries, "verify_sealed": None,
                                     "verify_txid": None, "verify_expires_at": None, **changes}
        with self.begin() as session:
            return store.requests.set_verification(
                session, request_id=req.id, expected=_MAY_START, changes=values,
                match={"verify_tries": req.verify_tries},
                audit=AuditDraft(actor=actor, action=AuditAction.VERIFY_STARTED, correlation_id=correlation_id,
                                 detail={"method": method}))

    def _fail(self, req: ResetRequest, method: VerifyMethod, outcome: str, correlation_id: str, *,
              match: dict[str, object], actor: str = SYSTEM, blocked: bool = False) -> ResetRequest | None:
        with self.begin() as session:
            return store.requests.set_verification(
                session, request_id=req.id, expected={VerifyState.PENDING}, match=match,
                changes={"verification": VerifyState.BLOCKED if blocked else VerifyState.FAILED,
                         "verify_sealed": None, "verify_txid": None, "verify_expires_at": None},
                audit=AuditDraft(actor=actor, action=AuditAction.VERIFY_FAILED, correlation_id=correlation_id,
                                 detail={"method": method, "outcome": outcome}))

    # --- slack-code --------------------------------------------------------------------------------------------

    def _send_code(self, req: ResetRequest, actor: str, correlation_id: str) -> str | None:
        assert req.target_slack_id is not None  # method_refusal: the Slack methods need the target in Slack
        if self.sealer is None:
            return messages.verification.refusal(VerifyRefusal.METHOD_NOT_ALLOWED, req, VerifyMethod.SLACK_CODE)
        code = SecretStr(new_code())
        # Kept out of every log line of this process while it is valid (upper case, as sent; a typed one is
        # never logged either: the submit handler wraps it at once).
        remember_secret(code, ttl=CODE_TTL.total_seconds())
        started = self._begin(req, actor, VerifyMethod.SLACK_CODE, correlation_id,
                              verify_sealed=self.sealer.seal(code), verify_expires_at=self.clock() + CODE_TTL)
        if started is None:
            return messages.verification.refusal(VerifyRefusal.NOT_PENDING, req)
        try:
            self.notifier.dm_secret(req.target_slack_id, SecretStr(messages.verification.code_dm_text(started, code)))
        except ResetbotError as e:
            log.warning("request %s: the verification code could not be sent: %s", req.id, type(e).__name__)
            self._fail(started, VerifyMethod.SLACK_CODE, "not_sent", correlation_id,
                       match={"verify_sealed": started.verify_sealed})
            failed, approvals = self._load(req.id)
            if failed is not None:
                self._redraw(failed, approvals=approvals)
            return messages.verification.code_not_sent()
        del code
        self._show(started, messages.verification.code_sent_thread(actor, req.target_slack_id),
                   blocks=messages.verification.code_sent_blocks(actor, req.target_slack_id, req.id))
        return messages.verification.started_agent(VerifyMethod.SLACK_CODE)

    def code_entry(self, *, request_id: str, actor: str,
                   correlation_id: str | None = None) -> tuple[int | None, str | None]:
        """(tries left, None) when ``actor`` may enter this request's code now (the modal may open), else
        (None, the sentence)."""
        req, _ = self._load(request_id)
        if req is None:
            return None, messages.requests.request_not_found(request_id)
        if actor != req.requester:
            return None, messages.verification.refusal(VerifyRefusal.ONLY_REQUESTER_VERIFIES, req)
        if not self._still_an_agent(actor):
            return None, self._refuse_verify(req, actor, VerifyRefusal.REQUESTER_NOT_AN_AGENT, "verify_code",
                                             correlation_id)
        if req.verification != VerifyState.PENDING or req.verify_method != VerifyMethod.SLACK_CODE:
            reason = start_refusal(VerifyState(req.verification)) or VerifyRefusal.NO_CODE_PENDING
            return None, messages.verification.refusal(reason, req)
        return MAX_CODE_TRIES - req.verify_tries, None

    def submit_code(self, *, request_id: str, actor: str, typed: SecretStr, correlation_id: str) -> str:
        """The code the agent typed: verified, a wrong try (the third fails it and tells security), or expired."""
        req, _ = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        tries_left, refused = self.code_entry(request_id=request_id, actor=actor, correlation_id=correlation_id)
        if refused is not None or tries_left is None:
            return refused or messages.verification.refusal(VerifyRefusal.NO_CODE_PENDING, req)
        attempt: dict[str, object] = {"verify_sealed": req.verify_sealed, "verify_tries": req.verify_tries}
        if req.verify_expires_at is None or self.clock() >= req.verify_expires_at:
            failed = self._fail(req, VerifyMethod.SLACK_CODE, "expired", correlation_id, match=attempt, actor=actor)
            if failed is not None:
                self._show(failed, messages.verification.code_expired_thread())
            return messages.verification.code_expired()
        expected = self.sealer.unseal(req.verify_sealed or "") if self.sealer else None
        if expected is None:  # sealed by another key (another replica's, before a restart): cannot be checked
            self._fail(req, VerifyMethod.SLACK_CODE, "unreadable", correlation_id, match=attempt, actor=actor)
            return messages.verification.code_unreadable()
        if code_matches(expected.get_secret_value(), typed.get_secret_value()):
            return self._verified(req, VerifyMethod.SLACK_CODE, actor, correlation_id, match=attempt)
        tries = req.verify_tries + 1
        if tries >= MAX_CODE_TRIES:
            failed = self._fail(req, VerifyMethod.SLACK_CODE, "wrong_code", correlation_id, match=attempt,
                                actor=actor, blocked=True)
            tried = self._tries_by_method(req.id)
            if failed is not None:
                self._show(failed, messages.verification.code_failed_thread(actor, tried))
                if self.rules.security_channel:
                    self.notifier.post(self.rules.security_channel,
                                       messages.verification.security_code_failed(failed, tried))
            return messages.verification.code_failed_agent(tried)
        with self.begin() as session:
            counted = store.requests.set_verification(
                session, request_id=req.id, expected={VerifyState.PENDING}, match=attempt,
                changes={"verify_tries": tries},
                audit=AuditDraft(actor=actor, action=AuditAction.VERIFY_CODE_WRONG, correlation_id=correlation_id,
                                 detail={"method": VerifyMethod.SLACK_CODE, "tries": tries}))
        if counted is None:  # another submission counted first: say where it stands now
            return self.code_entry(request_id=request_id, actor=actor)[1] or messages.verification.code_wrong(
                MAX_CODE_TRIES - tries)
        return messages.verification.code_wrong(MAX_CODE_TRIES - tries)

    # --- duo-push ----------------------------------------------------------------------------------------------

    def _send_push(self, req: ResetRequest, actor: str, correlation_id: str) -> str | None:
        assert self.duo is not None
        username = req.target_sam or req.target_upn.split("@", 1)[0]
        try:
            enrolment = self.duo.enrolment(username)
            if enrolment.result != "auth" or not enrolment.push_capable:
                self._audit(AuditDraft(actor=actor, action=AuditAction.VERIFY_FAILED, request_id=req.id,
                                       correlation_id=correlation_id,
                                       detail={"method": VerifyMethod.DUO_PUSH, "outcome": "not_enrolled",
                                               "duo_result": enrolment.result[:32]}))
                return messages.verification.duo_not_enrolled(req.target_display)
            txid = self.duo.push(username, pushinfo=messages.verification.duo_pushinfo(req),
                                 type_="Helpdesk verification")
        except ResetbotError as e:
            self._audit(AuditDraft(actor=actor, action=AuditAction.VERIFY_FAILED, request_id=req.id,
                                   correlation_id=correlation_id,
                                   detail={"method": VerifyMethod.DUO_PUSH, "outcome": "duo_unavailable"}))
            return messages.verification.duo_unavailable(str(e))
        deadline = self.clock() + DUO_PUSH_WAIT
        started = self._begin(req, actor, VerifyMethod.DUO_PUSH, correlation_id, verify_txid=txid,
                              verify_expires_at=deadline, verify_tries=req.verify_tries + 1)
        if started is None:
            return messages.verification.refusal(VerifyRefusal.NOT_PENDING, req)
        self._show(started, messages.verification.duo_sent_thread(actor, req.target_display))
        self.duo_pool.submit(self._follow_push, started, txid, correlation_id)
        return messages.verification.started_agent(VerifyMethod.DUO_PUSH)

    def _follow_push(self, req: ResetRequest, txid: str, correlation_id: str) -> None:
        """On the Duo pool: ask Duo until the push is answered (auth_status long-polls), then record it; a bot
        that is stopping leaves it to the sweep."""
        try:
            outcome = self._await_push(txid, req.verify_expires_at)
            if outcome != "stopped":
                self._record_push(req, txid, outcome, correlation_id)
        except Exception:  # a pool thread: nothing above it would say this
            log.exception("request %s: following the Duo push failed", req.id)

    def _await_push(self, txid: str, until: datetime | None) -> str:
        assert self.duo is not None
        errors = 0
        while (until is None or self.clock() < until) and not self.stopping.is_set():
            try:
                outcome = self.duo.outcome(txid)
            except ResetbotError as e:
                errors += 1
                log.warning("Duo push status unavailable (%d): %s", errors, e)
                if errors >= _DUO_ERRORS_TOLERATED:
                    return "error"
                self.stopping.wait(1.0)
                continue
            errors = 0
            if outcome != "waiting":
                return outcome
        return "stopped" if self.stopping.is_set() else "timeout"

    def _record_push(self, req: ResetRequest, txid: str, outcome: str, correlation_id: str) -> None:
        attempt: dict[str, object] = {"verify_txid": txid}
        if outcome == "allow":
            self._verified(req, VerifyMethod.DUO_PUSH, SYSTEM, correlation_id, match=attempt)
            return
        if outcome == "fraud":
            self._duo_fraud(req, correlation_id, match=attempt)
            return
        exhausted = req.verify_tries >= MAX_CODE_TRIES  # this push was the request's last try
        failed = self._fail(req, VerifyMethod.DUO_PUSH, outcome, correlation_id, match=attempt, blocked=exhausted)
        if failed is not None:
            self._show(failed, messages.verification.duo_outcome_thread(outcome, req.target_display))
            if exhausted:
                self._tell_security(messages.verification.security_duo_exhausted(
                    failed, self._tries_by_method(req.id)))

    def _duo_fraud(self, req: ResetRequest, correlation_id: str, *, match: dict[str, object]) -> None:
        """The person pressed "Report" on the push: someone is impersonating them. The attempt is blocked and,
        whatever state the request is in, their report counts as their "No" (module doc, "Report fraud"): a reset
        not started yet is cancelled, one under way or made is disowned (withheld, then contained), and security is
        told which request (its thread's link) and where it stood."""
        blocked = {"verification": VerifyState.BLOCKED, "verify_txid": None, "verify_expires_at": None}
        with self.begin() as session:
            failed = store.requests.set_verification(
                session, request_id=req.id, expected={VerifyState.PENDING}, match=match, any_state=True,
                changes=blocked,
                audit=AuditDraft(actor=SYSTEM, action=AuditAction.VERIFY_FAILED, correlation_id=correlation_id,
                                 detail={"method": VerifyMethod.DUO_PUSH, "outcome": "fraud"}))
            if failed is None:
                # The agent moved on since this push was sent (a call-back attested, a second push: "the push never
                # came, call me back" is the impostor's line), so the row no longer names it. The report still
                # comes from the person's phone, on a push this bot sent for this request: it counts all the same,
                # whatever check replaced it (only a request already blocked, by this report, is left alone).
                failed = store.requests.set_verification(
                    session, request_id=req.id, expected=_NOT_BLOCKED, any_state=True, changes=blocked,
                    audit=AuditDraft(actor=SYSTEM, action=AuditAction.VERIFY_FAILED, correlation_id=correlation_id,
                                     detail={"method": VerifyMethod.DUO_PUSH, "outcome": "fraud",
                                             "superseded": True}))
            if failed is None:
                return
            # Read on the row the UPDATE above locked: the state the report found, and what it waited for.
            found = RequestState(failed.state)
            approved = found == RequestState.APPROVED or (
                found == RequestState.PENDING_APPROVAL
                and len(store.requests.list_approvals(session, request_id=req.id)) >= failed.approvals_required)
            cancelled = store.requests.transition(
                session, request_id=req.id, expected=_NOT_STARTED, to=RequestState.CANCELLED,
                changes={"decided_at": self.clock()}, audit=AuditDraft(
                    actor=SYSTEM, action=AuditAction.CANCELLED, correlation_id=correlation_id,
                    detail={"by": "duo_fraud", "state": found.value})) if found in _NOT_STARTED else None
            if cancelled is None:
                # The reset began (or the request was closed): the report is the target's "No", recorded on the
                # row, so a verdict still to come withholds the password and contains the reset.
                store.requests.disown(session, request_id=req.id, unasked_too=True, audit=AuditDraft(
                    actor=SYSTEM, action=AuditAction.TARGET_DISOWNED, correlation_id=correlation_id,
                    detail={"by": "duo_fraud", "late": True, "state": found.value}))
        said = messages.verification.duo_fraud_thread(req.target_display, found, tap=bool(failed.tap))
        if cancelled is not None:
            self._announce(cancelled, said, decided_by=None)
        else:
            self._show(failed, said)
        contains = self.disowned_after_reset is not None and bool(failed.target_slack_id)
        self._tell_security(messages.verification.security_duo_fraud(
            failed, found, approved=approved, link=self._thread_link(failed), contained=contains))
        if found == RequestState.SUCCEEDED and self.disowned_after_reset is not None and failed.target_slack_id:
            # Made already: contained at once as "This wasn't me" would (sessions revoked, an unrevealed password
            # discarded, a TAP deleted, Scramble password offered to security).
            self.disowned_after_reset(request_id=req.id, actor=failed.target_slack_id, correlation_id=correlation_id)

    def _thread_link(self, req: ResetRequest) -> str | None:
        """The request thread's permalink for security's alert (None when Slack gives none: the alert names the
        request id anyway)."""
        if not (req.channel_id and req.thread_ts):
            return None
        return self.notifier.permalink(req.channel_id, req.thread_ts)

    # --- slack-confirm -----------------------------------------------------------------------------------------

    def _ask_target(self, req: ResetRequest, actor: str, correlation_id: str) -> str | None:
        assert req.target_slack_id is not None
        if req.confirmation == "yes":  # they said Yes already (RESETBOT_TARGET_CONFIRMATION=ask or required)
            if self._begin(req, actor, VerifyMethod.SLACK_CONFIRM, correlation_id) is None:
                return messages.verification.refusal(VerifyRefusal.NOT_PENDING, req)
            return self._verified(req, VerifyMethod.SLACK_CONFIRM, actor, correlation_id, match={})
        ask = req.confirmation == "off"
        started = self._begin(req, actor, VerifyMethod.SLACK_CONFIRM, correlation_id,
                              **({"confirmation": "pending"} if ask else {}))
        if started is None:
            return messages.verification.refusal(VerifyRefusal.NOT_PENDING, req)
        if ask:
            self.notifier.dm(req.target_slack_id, messages.requests.confirm_question_text(started),
                             blocks=messages.requests.confirm_question_blocks(started))
        self._show(started, messages.verification.confirm_sent_thread(actor, req.target_slack_id))
        return messages.verification.started_agent(VerifyMethod.SLACK_CONFIRM)

    # --- callback ----------------------------------------------------------------------------------------------

    def callback_modal(self, *, request_id: str, actor: str, channel: str) -> tuple[dict[str, Any] | None, str | None]:
        """(the modal listing the numbers on file, None), or (None, why not)."""
        req, _ = self._load(request_id)
        if req is None:
            return None, messages.requests.request_not_found(request_id)
        refused = self.verification_refusal(req, actor, VerifyMethod.CALLBACK)
        if refused:
            return None, refused
        phones = list(self.phones_of(req.target_entra_id)) if self.phones_of else []
        if not phones:
            return None, messages.verification.callback_no_numbers(req.target_display)
        return messages.verification.callback_modal(req, channel, phones), None

    def attest_callback(self, *, request_id: str, actor: str, correlation_id: str) -> str | None:
        req, _ = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        refused = self.verification_refusal(req, actor, VerifyMethod.CALLBACK, correlation_id)
        if refused:
            return refused
        if self._begin(req, actor, VerifyMethod.CALLBACK, correlation_id) is None:
            return messages.verification.refusal(VerifyRefusal.NOT_PENDING, req)
        return self._verified(req, VerifyMethod.CALLBACK, actor, correlation_id, match={})

    # --- the sweep ---------------------------------------------------------------------------------------------

    def _sweep_verifications(self, now: datetime) -> None:
        """A code nobody entered in its 5 minutes, or a Duo push whose follower stopped (its replica restarted),
        ends as failed once its deadline has passed by a margin the live follower never needs: the request
        message stops saying "under way" and the agent may start again."""
        with self.reading() as session:
            stale = store.requests.stale_verifications(session, before=now - _STALE_MARGIN)
        for req in stale:
            method = VerifyMethod(req.verify_method or VerifyMethod.SLACK_CODE)
            if method == VerifyMethod.DUO_PUSH and req.verify_txid and self._reported_while_unfollowed(req):
                continue
            outcome = "expired" if method == VerifyMethod.SLACK_CODE else "timeout"
            exhausted = req.verify_tries >= MAX_CODE_TRIES  # a Duo push that was the request's last try
            failed = self._fail(req, method, outcome, new_correlation_id(), actor="scheduler",
                                match={"verify_expires_at": req.verify_expires_at}, blocked=exhausted)
            if failed is not None:
                self._show(failed, messages.verification.attempt_lapsed(method))
                if exhausted and method == VerifyMethod.DUO_PUSH:
                    self._tell_security(messages.verification.security_duo_exhausted(
                        failed, self._tries_by_method(req.id)))

    def _reported_while_unfollowed(self, req: ResetRequest) -> bool:
        """A push nobody followed to its end (its replica stopped): Duo is asked once how it ended before it is
        called a timeout, so that a "Report" pressed meanwhile is acted on as a live one is (True: it was). Any
        other answer, or Duo out of reach, leaves it to lapse as before: only the report must not be lost."""
        assert req.verify_txid is not None
        if self.duo is None:
            return False
        try:
            outcome = self.duo.outcome(req.verify_txid)
        except ResetbotError as e:
            log.warning("request %s: Duo could not say how an unfollowed push ended (%s)", req.id, type(e).__name__)
            return False
        if outcome != "fraud":
            return False
        self._duo_fraud(req, new_correlation_id(), match={"verify_txid": req.verify_txid})
        return True

    # --- the outcome -------------------------------------------------------------------------------------------

    def _after_target_yes(self, req: ResetRequest, actor: str, correlation_id: str) -> None:
        """The target's Yes verifies the caller when a slack-confirm attempt was waiting for it."""
        if req.verification == VerifyState.PENDING and req.verify_method == VerifyMethod.SLACK_CONFIRM:
            self._verified(req, VerifyMethod.SLACK_CONFIRM, actor, correlation_id, match={})

    def _verified(self, req: ResetRequest, method: VerifyMethod, actor: str, correlation_id: str, *,
                  match: dict[str, object]) -> str:
        """Record the verification; when the request is approved already, that approval now counts and the reset
        starts (the other order: approval after verification, is ``approve``'s), unless the method was the agent's
        word (a call-back): then the approvals given before it are taken back in the same transaction, each
        audited, and the approvers asked again (``earlier_approvals_void``).

        The compare-and-set's UPDATE locks the request row before the approvals are read, and an Approve locks it
        before adding one (``add_approval``), so on any replica an approval is either before the verification
        (read here, and taken back after a call-back) or after it (given on a request already verified)."""
        now = self.clock()
        with self.begin() as session:
            changed = store.requests.set_verification(
                session, request_id=req.id, expected={VerifyState.PENDING}, match={"verify_method": method, **match},
                changes={"verification": VerifyState.VERIFIED, "verified_at": now, "verify_sealed": None,
                         "verify_txid": None, "verify_expires_at": None},
                audit=AuditDraft(actor=actor, action=AuditAction.CALLER_VERIFIED, correlation_id=correlation_id,
                                 detail={"method": method}))
            done = None
            approvals: list[str] = []
            taken_back: list[str] = []
            void = earlier_approvals_void(method)
            if changed is not None and void is not None:
                for earlier in store.requests.remove_approvals(session, request_id=req.id):
                    taken_back.append(earlier.approver)
                    store.audit.append_audit(session, draft=AuditDraft(
                        actor=SYSTEM, action=AuditAction.APPROVAL_NOT_COUNTED, request_id=req.id,
                        correlation_id=correlation_id, detail={
                            "approver": earlier.approver, "approved_at": earlier.at.isoformat(),
                            "method": method, "reason": void}))
            elif changed is not None:
                approvals = [a.approver for a in store.requests.list_approvals(session, request_id=req.id)]
                if len(approvals) >= changed.approvals_required:
                    done = self._approve_if_ready(session, changed, SYSTEM, correlation_id)
        if changed is None:
            return messages.verification.refusal(VerifyRefusal.NOT_PENDING, req)
        self._thread(changed, messages.verification.verified_thread(method, changed.verified_by, now))
        if done is not None:
            self._announce(done, messages.requests.approved(approvals), decided_by=None, approvals=approvals)
            self._start_reset(done, correlation_id)
            return messages.verification.verified_agent(method)
        self._redraw(changed, approvals=approvals)
        if taken_back:
            self._ask_again(changed, taken_back)
        self._refresh_homes(changed)
        return messages.verification.verified_agent(method, approvals_taken_back=bool(taken_back))

    def _ask_again(self, req: ResetRequest, taken_back: Sequence[str]) -> None:
        """After approvals were taken back: the thread says why in one sentence that mentions the approvers (as a
        new request's does), and the manager is DMed as when it was made. Best effort, as ``_show``: what counts
        is recorded already, and the redrawn message offers Approve to anyone who looks."""
        try:
            self._thread(req, messages.requests.approve_again(req, taken_back, self._group_id(req)))
            if req.manager_slack_id and req.channel_id:
                self.notifier.dm(req.manager_slack_id, messages.requests.approve_again_dm(req, req.channel_id))
        except ResetbotError as e:
            log.warning("request %s: the approvers could not be asked again: %s", req.id, e)

    def _tries_by_method(self, request_id: str) -> dict[str, int]:
        """The request's spent tries by method, read from its audit trail (each Duo push started, each wrong code,
        the last one included): tries count across methods, so what security reads names each."""
        tried: dict[str, int] = {}
        with self.begin() as session:
            events = store.audit.audit_for_request(session, request_id=request_id)
        for e in events:
            detail = json.loads(e.detail or "{}")
            method = str(detail.get("method", ""))
            if ((e.action == AuditAction.VERIFY_STARTED and method == VerifyMethod.DUO_PUSH)
                    or e.action == AuditAction.VERIFY_CODE_WRONG
                    or (e.action == AuditAction.VERIFY_FAILED and detail.get("outcome") == "wrong_code")):
                tried[method] = tried.get(method, 0) + 1
        return tried

    def _tell_security(self, text: str) -> None:
        """Best effort, as ``_show``: the blocked verification is recorded and audited already."""
        if not self.rules.security_channel:
            return
        try:
            self.notifier.post(self.rules.security_channel, text)
        except ResetbotError as e:
            log.warning("the security channel could not be told of a blocked verification: %s", e)

    def _show(self, req: ResetRequest, text: str, *, blocks: messages.format.Blocks | None = None) -> None:
        """Say an attempt's news in the thread and redraw the request message with its caller line. Best effort:
        the outcome is recorded and audited already, and a Slack failure here (a deleted thread, Slack down) must
        not undo it nor stop a sweep over other requests; the next redraw shows the state."""
        _, approvals = self._load(req.id)
        try:
            if req.channel_id and req.thread_ts:
                self.notifier.post(req.channel_id, text, blocks=blocks, thread_ts=req.thread_ts)
            self._redraw(req, approvals=approvals)
        except ResetbotError as e:
            log.warning("request %s: the verification's news could not be shown in Slack: %s", req.id, e)
