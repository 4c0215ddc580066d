"""Containing a reset its target disowns ("This wasn't me", or their "No" after it was made), and Scramble password.

At once, with no one to wait for: the target's sign-in sessions are revoked (Graph ``revokeSignInSessions``) and a
Temporary Access Pass the bot issued is deleted; the thread and the security channel are told what was done and what
was not, each step audited. The security channel's alert carries **Scramble password**, which a member of the
security group (never the requester, the target or an approver) presses to reset the password again, through Graph
and writeback, to one nobody is shown: never sealed, never revealable, forgotten as soon as Graph has it.

Which token. Every call here is made with the same delegated token the reset itself was made with (the requester's
own sign-in, or the service identity's in service mode): the identity that set the credential takes it back, and
Entra checks that identity's role against the target again, as for the reset. The app registration gets no
permission for any of it: an application permission is checked against no role, and
``UserAuthenticationMethod.ReadWrite.All`` (to delete a TAP) would also let whoever holds the app's secret mint one.
The agent's sign-in asks for ``User.RevokeSessions.All`` (delegated) for the revocation, which Entra allows to the
Helpdesk, Authentication, User, Privileged Authentication and Global Administrators (not the Password Administrator);
deleting a TAP takes the role that made it. The security group decides *who may* scramble, in Slack, as approvers
decide a reset; the token decides *what Entra allows*. Scramble alone, which sets a credential, falls back to the
presser's own sign-in when the requester has left the agents' group or has no working sign-in (logged out: the
insider who made the reset must not be able to disarm it).

A TAP nobody may be shown is deleted in Entra as soon as its verdict is recorded, whoever called it off: the target's
"No" while it was issued (containment, like any disowning: ``contain``), or a Cancel or Deny that came while Entra
issued it (``_delete_withheld_tap``: the same step, with the same token, audited with ``"withheld"``, said in the
thread after the verdict, and, when it fails, to the security channel with the request's link). Otherwise it would
stay usable for its lifetime: a credential that satisfies MFA, which nobody should hold but which anyone who saw it
on the wire or in Graph's logs could use. A verdict recorded by recovery after a restart takes the same path.

Failures are never silent: a step that fails (the agent's sign-in gone, Graph refusing or unreachable after its
retries) is audited as ``containment_failed`` with its reason and said in the thread and the alert with what a
person must do; pressing "This wasn't me" again runs the steps again (revoking twice is harmless).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from pydantic import SecretStr

from bot import messages, store
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.containment import StepResult, scramble_in_progress, scramble_refusal, scramble_too_late
from bot.domain.followup_rules import FollowUpKind
from bot.domain.groups import MEMBERS_FOR_A_DECISION_S
from bot.domain.lifecycle import RequestState
from bot.errors import GraphPermissionError, ResetbotError
from bot.logs import forget_secret
from bot.models import OutboxMessage, ResetRequest
from bot.policy import generate_temporary_password
from bot.services.outbox import channel_message
from bot.services.reset_perform import _in_thread
from bot.services.reset_reveal import ResetReveal

log = logging.getLogger("bot.services.containment")

#: How long past Graph's poll bound a Scramble press that started holds the button against another press: only a
#: replica that died mid-scramble lets go this way.
SCRAMBLE_CLAIM = timedelta(minutes=5)
_REVOKE_STEP = "revoke_sessions"
_TAP_STEP = "delete_tap"
#: What a request's trail holds once its target disowned it ("This wasn't me", or a No after the reset).
_DISOWNED = frozenset({AuditAction.RESET_DISOWNED, AuditAction.TARGET_DISOWNED})


class ResetContainment(ResetReveal):
    """``not_me`` (the reveal's, then containment), ``contain`` and ``scramble``."""

    def not_me(self, *, request_id: str, actor: str, correlation_id: str) -> str:
        """The target disowns the reset: alerted and audited as before, then contained at once."""
        answer = super().not_me(request_id=request_id, actor=actor, correlation_id=correlation_id)
        with self.reading() as session:
            req = store.requests.get_request(session, request_id=request_id)
        if req is None or actor != req.target_slack_id or req.state != RequestState.SUCCEEDED:
            return answer  # refused by the reveal's not_me, or nothing was set that could be contained
        revoked = self.contain(req, actor=actor, correlation_id=correlation_id)
        return messages.containment.target_answer(revoked)

    def _contained_on_disowning(self, req: ResetRequest) -> bool:
        return req.state == RequestState.SUCCEEDED

    def contain(self, req: ResetRequest, *, actor: str, correlation_id: str) -> StepResult:
        """Revoke the target's sessions and delete the TAP this request issued, audit each step, and tell the thread
        and the security channel; the revocation's outcome. Every press does both again: a session opened with the
        temporary password since an earlier revocation (``--revoke-sessions``, or a first press) ends too, and a pass
        already deleted is simply found gone."""
        revoked, tap, audits = self._contain_steps(req, actor=actor, correlation_id=correlation_id,
                                                   delete_tap=bool(req.tap and req.graph_operation_id))
        self._tell_containment(req, revoked, tap, audits, correlation_id)
        return revoked

    def _after_success(self, done: ResetRequest, correlation_id: str, *, withheld: str | None = None) -> None:
        """A target who said No while their reset was running (nothing could be contained then) is contained now it
        is made (its TAP deleted with the rest). A TAP ``withheld`` because a Cancel or Deny came while Entra issued
        it is deleted in Entra (``_delete_withheld_tap``). Otherwise ``--revoke-sessions``: whoever holds a session
        with the old password is signed out now; audited and said in the thread (a failure too, with what a person
        must do)."""
        if done.confirmation == "no":
            self.contain(done, actor=done.target_slack_id or "system", correlation_id=correlation_id)
            return
        if withheld and done.tap:
            self._delete_withheld_tap(done, correlation_id, withheld)
        if not done.revoke_sessions:
            return
        revoked, _, audits = self._contain_steps(done, actor="system", correlation_id=correlation_id,
                                                 delete_tap=False)
        now = self.clock()
        with self.begin() as session:
            for draft in audits:
                store.audit.append_audit(session, draft=draft)
            ids = self.outbox.enqueue(session, _in_thread(done, messages.containment.contained(done, revoked, None),
                                                          origin="reset.revoke_sessions"), now=now)
        self.outbox.deliver(ids, now=now)

    def _after_tap_unshown(self, done: ResetRequest, correlation_id: str) -> None:
        """A pass issued before its process stopped, which nobody can be shown now: deleted as a withheld one."""
        self._delete_withheld_tap(done, correlation_id, "interrupted")

    def _contain_steps(self, req: ResetRequest, *, actor: str, correlation_id: str, delete_tap: bool,
                       token_of: Callable[[], str] | None = None
                       ) -> tuple[StepResult, StepResult | None, list[AuditDraft]]:
        """Run the steps with the token the reset was made with (or ``token_of``'s); (revocation, TAP deletion or
        None, the audit rows to append). Never raises."""
        token, token_problem = self._containment_token(req, correlation_id, token_of)
        audits: list[AuditDraft] = []
        revoked = self._step(req, _REVOKE_STEP, AuditAction.SESSIONS_REVOKED, token=token,
                             token_problem=token_problem, audits=audits, actor=actor, correlation_id=correlation_id,
                             call=lambda t: self.graph.revoke_sign_in_sessions(
                                 user_id=req.target_entra_id, access_token=t, client_request_id=correlation_id))
        tap: StepResult | None = None
        if delete_tap and req.graph_operation_id:
            tap = self._delete_tap_step(req, token, token_problem, audits, actor=actor, correlation_id=correlation_id)
        return revoked, tap, audits

    def _containment_token(self, req: ResetRequest, correlation_id: str,
                           token_of: Callable[[], str] | None = None) -> tuple[str | None, str | None]:
        """(the token the reset was made with, or ``token_of``'s; None and why when there is none)."""
        try:
            return (token_of() if token_of is not None else self.token_for(req.requester)), None
        except ResetbotError as e:  # not linked, sign-in expired, Entra away: every step is left for a person
            log.warning("request %s: no token to contain it (%s): %s", req.id, correlation_id, type(e).__name__)
            return None, str(e)

    def _delete_tap_step(self, req: ResetRequest, token: str | None, token_problem: str | None,
                         audits: list[AuditDraft], *, actor: str, correlation_id: str,
                         detail: dict[str, object] | None = None) -> StepResult:
        """Delete the TAP this request issued (its method id is the request's ``graph_operation_id``)."""
        tap_id = req.graph_operation_id or ""
        return self._step(req, _TAP_STEP, AuditAction.TAP_DELETED, token=token, token_problem=token_problem,
                          audits=audits, actor=actor,
                          correlation_id=correlation_id, detail=detail,
                          call=lambda t: self.graph.delete_temporary_access_pass(
                              user_id=req.target_entra_id, method_id=tap_id, access_token=t,
                              client_request_id=correlation_id))

    @staticmethod
    def _step(req: ResetRequest, step: str, finished: str, *, token: str | None, token_problem: str | None,
              audits: list[AuditDraft], actor: str, correlation_id: str, call: Callable[[str], object],
              detail: dict[str, object] | None = None) -> StepResult:
        """One containment step: its outcome, and its audit row appended to ``audits`` (``finished`` with whether
        it was already done, or ``containment_failed`` with the step and why). Never raises."""
        if token is None:
            result = StepResult(done=False, reason=token_problem)
        else:
            try:
                gone_before = call(token) is False
            except GraphPermissionError as e:
                log.warning("request %s: %s refused by Entra (%s)", req.id, step, correlation_id)
                result = StepResult(done=False, reason=f"Entra refused it: {e.code or 'insufficient role'}; "
                                                       "the role of the account the reset was made with may "
                                                       "not do this to this user")
            except ResetbotError as e:
                log.warning("request %s: %s failed (%s): %s", req.id, step, correlation_id, type(e).__name__)
                result = StepResult(done=False, reason=str(e))
            else:
                result = StepResult(done=True, already=gone_before)
        extra = detail or {}
        if result.done:
            audits.append(AuditDraft(actor=actor, action=finished, request_id=req.id, correlation_id=correlation_id,
                                     detail={"already_gone": result.already, **extra}))
        else:
            audits.append(AuditDraft(actor=actor, action=AuditAction.CONTAINMENT_FAILED, request_id=req.id,
                                     correlation_id=correlation_id,
                                     detail={"step": step, "reason": result.reason or "", **extra}))
        return result

    def _delete_withheld_tap(self, done: ResetRequest, correlation_id: str, why: str) -> None:
        """A TAP made for a request called off while Entra issued it (a Cancel or Deny: ``why`` is ``withdrawn``),
        or whose process stopped before its verdict (``interrupted``): nobody was shown it, and it must not stay
        usable for its lifetime either. Deleted at once with the token it was made with,
        audited (``tap_deleted``, or ``containment_failed`` with why), and said in the thread; a deletion that
        fails is also said to the security channel, with the request's link, since a live pass remains. Never
        raises."""
        token, token_problem = self._containment_token(done, correlation_id)
        audits: list[AuditDraft] = []
        if done.graph_operation_id:
            step = self._delete_tap_step(done, token, token_problem, audits, actor="system",
                                         correlation_id=correlation_id, detail={"withheld": why})
        else:  # not expected: the verdict records the pass's id with its success
            step = StepResult(done=False, reason="the bot did not learn the pass's id from Entra")
            audits.append(AuditDraft(actor="system", action=AuditAction.CONTAINMENT_FAILED, request_id=done.id,
                                     correlation_id=correlation_id,
                                     detail={"step": _TAP_STEP, "reason": step.reason or "", "withheld": why}))
        link = None
        if not step.done and self.security_channel and done.channel_id and done.thread_ts:
            link = self.notifier.permalink(done.channel_id, done.thread_ts)
        now = self.clock()
        with self.begin() as session:
            for draft in audits:
                store.audit.append_audit(session, draft=draft)
            owed: list[OutboxMessage] = _in_thread(done, messages.containment.withheld_tap_deletion(done, step),
                                                   origin="reset.tap_withheld")
            if not step.done and self.security_channel:
                owed.append(channel_message(
                    self.security_channel, messages.containment.security_withheld_tap_not_deleted(done, step, link),
                    origin="reset.tap_withheld", request_id=done.id))
            ids = self.outbox.enqueue(session, owed, now=now)
        self.outbox.deliver(ids, now=now)
        if step.done:
            log.info("request %s: its withheld TAP is deleted in Entra (%s)", done.id, correlation_id)
        else:
            log.warning("request %s: its withheld TAP could NOT be deleted in Entra (%s)%s", done.id, correlation_id,
                        "" if self.security_channel else "; no security channel is set to tell")

    def _tell_containment(self, req: ResetRequest, revoked: StepResult, tap: StepResult | None,
                          audits: list[AuditDraft], correlation_id: str) -> None:
        """The audit rows and the messages, in one transaction (an account of containment must not be lost to a
        Slack blip, nor said without its audit)."""
        now = self.clock()
        scramble = not req.tap
        with self.begin() as session:
            for draft in audits:
                store.audit.append_audit(session, draft=draft)
            owed: list[OutboxMessage] = _in_thread(req, messages.containment.contained(req, revoked, tap),
                                                   origin="reset.contained")
            if self.security_channel:
                owed.append(channel_message(
                    self.security_channel, messages.containment.security_alert_text(req, revoked, tap,
                                                                                    scramble=scramble),
                    blocks=messages.containment.security_alert_blocks(req, revoked, tap, scramble=scramble),
                    origin="reset.containment", request_id=req.id))
            ids = self.outbox.enqueue(session, owed, now=now)
        self.outbox.deliver(ids, now=now)
        log.info("request %s contained (%s): sessions %s, TAP %s", req.id, correlation_id,
                 "revoked" if revoked.done else "NOT revoked",
                 "n/a" if tap is None else "deleted" if tap.done else "NOT deleted")

    # --- Scramble password ---------------------------------------------------------------------------------------

    def scramble(self, *, request_id: str, actor: str, correlation_id: str) -> str:
        """A security-group member's Scramble press: the sentence for them. Refusals are audited and change
        nothing; the reset's outcome is audited and said in the thread and the security channel. The checks and
        the ``scramble_started`` claim are one transaction on the locked request, so two presses at once (two
        members, two replicas) scramble once."""
        group = self.security_group or None
        in_group = bool(group) and actor in self.notifier.group_members(group or "", max_age=MEMBERS_FOR_A_DECISION_S)
        now = self.clock()
        with self.begin() as session:
            req = store.requests.lock_request(session, request_id=request_id)
            if req is None:
                return messages.requests.request_not_found(request_id)
            approvers = [a.approver for a in store.requests.list_approvals(session, request_id=req.id)]
            events = store.audit.audit_for_request(session, request_id=req.id)
            newer = store.requests.newer_password_reset(session, request=req)
            refusal = scramble_refusal(
                actor=actor, security_group_set=bool(group), in_security_group=in_group, requester=req.requester,
                target=req.target_slack_id, approvers=approvers, state=RequestState(req.state), tap=req.tap,
                disowned=bool({e.action for e in events} & _DISOWNED),
                already_scrambled=any(e.action == AuditAction.SCRAMBLED for e in events),
                superseded=newer is not None,
                in_progress=scramble_in_progress([(e.action, e.at) for e in events], now=now,
                                                 claim=timedelta(seconds=self.poll_timeout_s) + SCRAMBLE_CLAIM),
                too_late=scramble_too_late([(e.action, e.at) for e in events], now=now, window=self.scramble_window))
            store.audit.append_audit(session, draft=AuditDraft(
                actor=actor, action=AuditAction.SCRAMBLE_STARTED, request_id=req.id, correlation_id=correlation_id,
            ) if refusal is None else AuditDraft(
                actor=actor, action=AuditAction.REFUSED, request_id=req.id, correlation_id=correlation_id,
                detail={"attempted": "scramble", "reason": refusal.value,
                        **({"newer": newer.id} if newer is not None else {})}))
        if refusal is not None:
            return messages.containment.scramble_refused(refusal, req.id,
                                                         group=self.notifier.group_handle(group) if group else None,
                                                         newer=newer.id if newer is not None else None,
                                                         window_hours=int(self.scramble_window.total_seconds() // 3600))
        return self._scramble(req, actor, correlation_id)

    def _scramble_token(self, req: ResetRequest, actor: str, cid: str) -> str:
        """The reset's own token while its requester is still an agent with a working sign-in; otherwise the
        presser's own. Scramble sets a credential, so it never acts as someone taken out of the helpdesk, and the
        agent who made the reset (an insider, or whoever holds their Slack session) cannot disarm it by logging
        out. Raises as ``token_for`` when the presser has no sign-in either (the sentence says so)."""
        agents = self.notifier.group_members(self.agents_group, max_age=MEMBERS_FOR_A_DECISION_S) \
            if self.agents_group else ()
        if not self.agents_group or req.requester in agents:
            try:
                return self.token_for(req.requester)
            except ResetbotError as e:
                log.info("request %s: the reset's token is gone (%s, %s); scrambling with the presser's own",
                         req.id, type(e).__name__, cid)
        return self.token_for(actor)

    def _scramble_reset(self, req: ResetRequest, actor: str, cid: str) -> tuple[str | None, bool, str | None]:
        """The reset to a password nobody is shown: (Graph's operation id, still pending, why it failed). Never
        raises; the password is forgotten before this returns."""
        password: SecretStr | None = None
        try:
            ad = (self.directory.find_user(guid=req.target_guid) if req.target_guid
                  else self.directory.find_user(dn=req.target_dn) if req.target_dn else None)
            if ad is None:
                return None, False, "the AD account is gone"
            password = generate_temporary_password(self.directory.effective_policy(ad), sam=ad.sam,
                                                   display_name=ad.display_name)
            op = self.graph.reset_password(access_token=self._scramble_token(req, actor, cid),
                                           user_id=req.target_entra_id, new_password=password,
                                           poll_timeout_s=self.poll_timeout_s, client_request_id=cid)
            if not op.done:
                return op.id, True, None
            return op.id, False, None if op.succeeded else op.status_detail or "Entra's operation failed"
        except ResetbotError as e:
            log.warning("request %s: scramble failed (%s): %s", req.id, cid, type(e).__name__)
            return None, False, str(e)
        finally:
            forget_secret(password)
            del password  # nobody is ever shown it: not sealed, not kept

    def _scramble(self, req: ResetRequest, actor: str, cid: str) -> str:
        operation, pending, reason = self._scramble_reset(req, actor, cid)
        contained: list[AuditDraft] = []
        revoked = StepResult(done=False)
        if reason is None and not pending:
            # A session the caller opened with the temporary password between the disowning and this press
            # outlives the password: it ends now too.
            revoked, _, contained = self._contain_steps(req, actor=actor, correlation_id=cid, delete_tap=False,
                                                        token_of=lambda: self._scramble_token(req, actor, cid))
        now = self.clock()
        if reason is None and not pending:
            action = AuditAction.SCRAMBLED
            sentence = (f"{messages.containment.scrambled(req, actor)}\n"
                        f"{messages.containment.contained(req, revoked, None)}")
        elif pending:
            action, sentence = AuditAction.SCRAMBLE_FAILED, messages.containment.scramble_pending(req, actor, cid)
        else:
            action = AuditAction.SCRAMBLE_FAILED
            sentence = messages.containment.scramble_failed(req, actor, reason or "unknown error", cid)
        with self.begin() as session:
            store.audit.append_audit(session, draft=AuditDraft(
                actor=actor, action=action, request_id=req.id, correlation_id=cid, graph_operation_id=operation,
                detail={"pending": True} if pending else {"reason": reason} if reason else {}))
            for draft in contained:
                store.audit.append_audit(session, draft=draft)
            if action == AuditAction.SCRAMBLED:
                # Nobody knows the new password: reminding the user to replace the temporary one would only confuse.
                store.followups.skip_followups(session, request_id=req.id, kind=FollowUpKind.REPLACED, now=now)
            owed = _in_thread(req, sentence, origin="reset.scramble")
            if self.security_channel:
                owed.append(channel_message(self.security_channel, sentence, origin="reset.scramble",
                                            request_id=req.id))
            ids = self.outbox.enqueue(session, owed, now=now)
        self.outbox.deliver(ids, now=now)
        return sentence
