"""Performing an approved reset: approved → resetting → succeeded | rejected | failed (spec section 4).

The password is generated for the target's effective policy, set in Entra ID with Graph ``resetPassword``
(the agent's own delegated token, so Entra's role rules apply), and writeback carries it to AD, whose answer
comes back in the operation. The verdict goes to the thread in plain words. The password itself only ever
exists in this process's memory, in the sealed (encrypted) row until its one reveal, and in the reveal
modal: never in a message, a log line, the audit trail or an exception.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import SecretStr

from bot import messages, store
from bot.clients.directory import Directory
from bot.clients.graph import Graph
from bot.clients.slack_notify import Notifier
from bot.db import SessionFactory
from bot.errors import ResetbotError
from bot.logs import REVEALED_SECRET_TTL_S, forget_secret, remember_secret
from bot.models import ResetRequest, utcnow
from bot.policy import generate_temporary_password, phonetic, precheck
from bot.services.audit import AuditAction, AuditDraft
from bot.services.lifecycle import RequestState
from bot.services.rules import Refusal
from bot.services.sealing import Sealer
from bot.services.verdict import ErrorKind, ResetOutcome, Verdict, VerdictKind, classify, error_kind

log = logging.getLogger(__name__)

REVEAL_TTL = timedelta(minutes=10)
#: A Temporary Access Pass issued with ``--tap``: valid long enough to be read out and used, once.
TAP_LIFETIME_MINUTES = 60
_FINAL_ACTION = {
    RequestState.SUCCEEDED: AuditAction.SUCCEEDED,
    RequestState.REJECTED: AuditAction.REJECTED,
    RequestState.FAILED: AuditAction.FAILED,
}


@dataclass
class ResetService:
    begin: SessionFactory
    notifier: Notifier
    graph: Graph
    directory: Directory
    sealer: Sealer
    #: The delegated Graph access token of the agent (Slack id) whose hands perform the reset.
    token_for: Callable[[str], str]
    security_channel: str | None = None
    poll_timeout_s: float = 60.0
    clock: Callable[[], datetime] = field(default=utcnow)
    _in_flight: int = field(default=0, init=False, repr=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no reset is running (every verdict posted), or ``timeout``; True when idle. What a graceful
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
        with self.begin() as session:
            started = store.transition(session, request_id=req.id, expected={RequestState.APPROVED},
                                       to=RequestState.RESETTING,
                                       audit=AuditDraft(actor="system", action=AuditAction.RESET_STARTED,
                                                        correlation_id=correlation_id))
        if started is None:
            return
        self._thread(started, messages.tap_started(started.target_display) if started.tap
                     else messages.reset_started(started.target_display))
        verdict, operation_id, password = (self._issue_tap(started, correlation_id) if started.tap
                                           else self._reset(started, correlation_id))
        final = verdict.final_state
        with self.begin() as session:
            if password is not None and final == RequestState.SUCCEEDED:
                store.seal(session, request_id=started.id, ciphertext=self.sealer.seal(password),
                           expires_at=self.clock() + REVEAL_TTL, kind="tap" if started.tap else "password")
            done = store.transition(
                session, request_id=started.id, expected={RequestState.RESETTING}, to=final,
                changes={"verdict": verdict.kind.value, "graph_operation_id": operation_id},
                audit=AuditDraft(actor="system", action=_FINAL_ACTION[final], correlation_id=correlation_id,
                                 detail={"verdict": verdict.kind.value, "rule": verdict.rule or "",
                                         **dict(verdict.detail)}),
            )
        forget_secret(password)  # the only copy now is the sealed one
        password = None
        if done is None:
            return
        self._redraw(done)
        if done.tap and final == RequestState.SUCCEEDED:
            self._thread(done, messages.tap_issued(done.target_display, done.requester, TAP_LIFETIME_MINUTES))
        else:
            self._thread(done, messages.verdict_sentence(verdict, name=done.target_display,
                                                         requester=done.requester, correlation_id=correlation_id))
        if final == RequestState.SUCCEEDED:
            self._thread(done, messages.reveal_blocks(done.id)[0]["text"]["text"],
                         blocks=messages.reveal_blocks(done.id))
            if done.target_slack_id:
                self.notifier.dm(done.target_slack_id, messages.target_reset_notice_text(done),
                                 blocks=messages.target_reset_notice_blocks(done))

    def _reset(self, req: ResetRequest, cid: str) -> tuple[Verdict, str | None, SecretStr | None]:
        """(verdict, Graph operation id, the password when it was set). Never raises: every failure is a
        verdict, and a failure's text never holds the password (Graph's client scrubs it)."""
        try:
            ad = self.directory.find_user(dn=req.target_dn) if req.target_dn else None
            if ad is None:
                gone = ResetOutcome(error=ErrorKind.OTHER, error_message="the AD account is gone")
                return classify(gone), None, None
            if req.unlock and ad.locked_out:
                self._unlock(req, ad.dn, cid)
            policy = self.directory.effective_policy(ad)
            password = generate_temporary_password(policy, sam=ad.sam, display_name=ad.display_name)
            checks = precheck(password.get_secret_value(), policy, sam=ad.sam, display_name=ad.display_name)
            token = self.token_for(req.requester)
            op = self.graph.reset_password(access_token=token, user_id=req.target_entra_id, new_password=password,
                                           poll_timeout_s=self.poll_timeout_s, client_request_id=cid)
        except ResetbotError as e:
            log.warning("reset %s failed before an outcome (%s): %s", req.id, cid, type(e).__name__)
            return classify(ResetOutcome(error=error_kind(e), error_code=getattr(e, "code", None),
                                         error_message=str(e))), None, None
        verdict = classify(ResetOutcome(status=op.status, status_detail=op.status_detail, precheck=checks,
                                        never_expires=ad.password_never_expires))
        return verdict, op.id, password if verdict.final_state == RequestState.SUCCEEDED else None

    def _issue_tap(self, req: ResetRequest, cid: str) -> tuple[Verdict, str | None, SecretStr | None]:
        """``--tap``: a Temporary Access Pass instead of a password (cloud only: nothing to write back). Made
        with the app's own permission, as Microsoft allows for TAPs; never raises."""
        try:
            tap = self.graph.create_temporary_access_pass(user_id=req.target_entra_id,
                                                          lifetime_minutes=TAP_LIFETIME_MINUTES, usable_once=True,
                                                          client_request_id=cid)
        except ResetbotError as e:
            log.warning("TAP for %s failed (%s): %s", req.id, cid, type(e).__name__)
            return classify(ResetOutcome(error=error_kind(e), error_code=getattr(e, "code", None),
                                         error_message=str(e))), None, None
        return Verdict(kind=VerdictKind.SUCCEEDED), tap.id, tap.temporary_access_pass

    def _unlock(self, req: ResetRequest, dn: str, cid: str) -> None:
        """Clear the lockout before the reset (writeback refuses a locked-out account). A failure is said in
        the thread and the reset goes on: its verdict then says the account is locked."""
        try:
            self.directory.unlock(dn)
        except ResetbotError as e:
            self._thread(req, messages.unlock_failed(req.target_display, str(e)))
            return
        self._audit(AuditDraft(actor="system", action=AuditAction.UNLOCKED, request_id=req.id, correlation_id=cid))
        self._thread(req, messages.unlocked(req.target_display))

    # --- reveal, the target's "This wasn't me", the wipe ------------------------------------------------

    def reveal(self, *, request_id: str, actor: str,
               correlation_id: str) -> tuple[dict[str, object] | None, str | None]:
        """(modal, None) for the requester's one reveal; (None, sentence) for anyone or anything else."""
        with self.begin() as session:
            req = store.get_request(session, request_id=request_id)
        if req is None:
            return None, messages.request_not_found(request_id)
        if actor != req.requester:
            self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                                   correlation_id=correlation_id,
                                   detail={"attempted": "reveal", "reason": Refusal.ONLY_REQUESTER_REVEALS}))
            return None, messages.refusal(Refusal.ONLY_REQUESTER_REVEALS)
        with self.begin() as session:
            taken = store.unseal_once(session, request_id=req.id, now=self.clock())
            if taken is not None:
                store.append_audit(session, draft=AuditDraft(actor=actor, action=AuditAction.REVEALED,
                                                             request_id=req.id, correlation_id=correlation_id))
        if taken is None:
            return None, messages.reveal_gone()
        kind, ciphertext = taken
        secret = self.sealer.unseal(ciphertext)
        remember_secret(secret, ttl=REVEALED_SECRET_TTL_S)
        if secret is None:
            return None, messages.reveal_gone()
        modal = messages.reveal_modal(name=req.target_display, password=secret, spelled=phonetic(secret),
                                      must_change=req.verdict == VerdictKind.SUCCEEDED, tap=kind == "tap")
        self._thread(req, messages.revealed(actor))
        return modal, None

    def not_me(self, *, request_id: str, actor: str, correlation_id: str) -> str:
        with self.begin() as session:
            req = store.get_request(session, request_id=request_id)
            if req is None or actor != req.target_slack_id:
                return messages.refusal(Refusal.ONLY_TARGET_CONFIRMS)
            store.append_audit(session, draft=AuditDraft(actor=actor, action=AuditAction.RESET_DISOWNED,
                                                         request_id=req.id, correlation_id=correlation_id))
        if self.security_channel:
            self.notifier.post(self.security_channel, messages.security_reset_disowned(req))
        self._thread(req, messages.security_reset_disowned(req))
        return messages.not_me_answered()

    def wipe_expired(self, *, now: datetime | None = None) -> int:
        """Wipe sealed passwords nobody revealed within their time; the thread says so."""
        with self.begin() as session:
            wiped = store.wipe_expired_secrets(session, now=now or self.clock())
            for request_id in wiped:
                store.append_audit(session, draft=AuditDraft(actor="scheduler", action=AuditAction.UNREVEALED_WIPED,
                                                             request_id=request_id))
            reqs = [store.get_request(session, request_id=r) for r in wiped]
        for req in reqs:
            if req is not None:
                self._thread(req, messages.secret_wiped())
        return len(wiped)

    # --- helpers -------------------------------------------------------------------------------------------------

    def _audit(self, draft: AuditDraft) -> None:
        with self.begin() as session:
            store.append_audit(session, draft=draft)

    def _thread(self, req: ResetRequest, text: str, *, blocks: messages.Blocks | None = None) -> None:
        if req.channel_id and req.thread_ts:
            self.notifier.post(req.channel_id, text, blocks=blocks, thread_ts=req.thread_ts)

    def _redraw(self, req: ResetRequest) -> None:
        if req.channel_id and req.thread_ts:
            group_id = self.notifier.group_id(req.approver_group) if req.approver_group else None
            self.notifier.update(req.channel_id, req.thread_ts, messages.request_text(req),
                                 blocks=messages.request_blocks(req, approvals=[], group_id=group_id))
