"""Deciding on a reset request: approve, deny, cancel, the target's confirmation (a late No included), and the
scheduler's sweep that escalates and expires. One compare-and-set per state change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlmodel import Session

from bot import messages, store
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.followup_rules import FollowUpKind
from bot.domain.groups import MEMBERS_FOR_A_DECISION_S
from bot.domain.lifecycle import RequestState, predecessors
from bot.domain.rules import Refusal, approval_refusal, approvers_for, cancel_refusal, identity_refusal
from bot.domain.verification import VerifyState, start_refusal, usable_methods
from bot.models import ResetRequest
from bot.services.request_views import RequestViews
from bot.settings import ApproverSource, TargetConfirmation, VerifyMethod

SYSTEM = "system"


#: A request in these states has not started its reset: the target's No still cancels it, even after their Yes.
_NOT_STARTED = frozenset({RequestState.PENDING_APPROVAL, RequestState.APPROVED})
#: A Deny may come while the request waits or is approved (the check before the reset runs: it is denied, and the
#: reset never starts), or once its reset runs (then it withdraws: the password is discarded when made); a Cancel
#: from the requester likewise.
_WITHDRAWABLE = frozenset({RequestState.PENDING_APPROVAL, RequestState.APPROVED, RequestState.RESETTING,
                           RequestState.SUCCEEDED})
#: A reset under way or made: a Deny or Cancel can no longer stop it, only withdraw its password.
_UNDER_WAY = frozenset({RequestState.RESETTING, RequestState.SUCCEEDED})

class RequestDecisions(RequestViews):
    """Approve, deny, cancel, confirm, and the sweep: every way a pending request is decided."""

    # RequestService's fields these methods read (declared here for the type checker; the dataclass sets them).
    clock: Callable[[], datetime]
    after_approval: Callable[..., None] | None
    disowned_after_reset: Callable[..., str] | None

    # --- approve / deny / cancel / confirm ----------------------------------------------------------------

    def approve(self, *, request_id: str, actor: str, correlation_id: str) -> str | None:
        req, approvals = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        if actor in approvals and req.state != RequestState.PENDING_APPROVAL:
            return None  # a repeat of the click that already counted (double click, redelivery): nothing to say
        refusal = self._decision_refusal(req, actor, approvals, approving=True)
        if refusal is None and req.requester not in self.notifier.group_members(self.rules.agents_group,
                                                                      max_age=MEMBERS_FOR_A_DECISION_S):
            refusal = Refusal.REQUESTER_NOT_AN_AGENT  # left the helpdesk since asking
        if refusal:
            return self._refuse(req, actor, refusal, correlation_id, "approve")
        with self.begin() as session:
            tally = store.requests.add_approval(session, request_id=req.id, approver=actor, audit=AuditDraft(
                actor=actor, action=AuditAction.APPROVAL_ADDED, correlation_id=correlation_id))
            # The target's Yes may have landed since _load: decide on the row as it is now, locked.
            req = store.requests.lock_request(session, request_id=req.id) or req
            done = None
            if tally.total >= req.approvals_required:
                done = self._approve_if_ready(session, req, actor, correlation_id)
            approvals = [a.approver for a in store.requests.list_approvals(session, request_id=req.id)]
        if done is not None:
            self._announce(done, messages.requests.approved(approvals), decided_by=None, approvals=approvals)
            self._start_reset(done, correlation_id)
        elif tally.added and tally.total < req.approvals_required:
            self._redraw(req, approvals=approvals)
            self._thread(req, messages.requests.approval_added(actor, tally.total, req.approvals_required))
        elif tally.added and self._waiting_for_target(req):
            self._redraw(req, approvals=approvals)
            self._thread(req, messages.requests.waiting_for_target(req.target_slack_id, req.target_display))
        elif tally.added and self._waiting_for_caller(req):
            self._redraw(req, approvals=approvals)
            callback_possible = start_refusal(VerifyState(req.verification), req.verify_tries) is None and (
                VerifyMethod.CALLBACK in usable_methods(self.rules.verify_methods, protected=bool(req.protected),
                                                        target_in_slack=req.target_slack_id is not None))
            self._thread(req, messages.verification.waiting_for_verification(callback_possible=callback_possible))
        return None

    def _start_reset(self, req: ResetRequest, correlation_id: str) -> None:
        if self.after_approval is not None:
            self.after_approval(req, correlation_id=correlation_id)

    def _waiting_for_target(self, req: ResetRequest) -> bool:
        return self.rules.target_confirmation == TargetConfirmation.REQUIRED and req.confirmation == "pending"

    def _waiting_for_caller(self, req: ResetRequest) -> bool:
        """The reset waits for the caller's verification (in either order with the approval)."""
        return self.rules.verify_required and req.verification != VerifyState.VERIFIED

    def _approve_if_ready(self, session: Session, req: ResetRequest, actor: str,
                          correlation_id: str) -> ResetRequest | None:
        """pending → approved, unless the target still has to confirm (required mode) or the caller is not
        verified yet (``verify_required``)."""
        if self._waiting_for_target(req) or self._waiting_for_caller(req):
            return None
        return store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                         to=RequestState.APPROVED, changes={"decided_at": self.clock()},
                                         audit=AuditDraft(actor=actor, action=AuditAction.APPROVED,
                                                          correlation_id=correlation_id))

    def can_decide(self, *, request_id: str, actor: str, correlation_id: str) -> str | None:
        """None when ``actor`` may deny this request now (the modal may open); otherwise the refusal, audited."""
        req, approvals = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        refusal = self._decision_refusal(req, actor, approvals, approving=False, states=_WITHDRAWABLE)
        return self._refuse(req, actor, refusal, correlation_id, "deny") if refusal else None

    def deny(self, *, request_id: str, actor: str, reason: str, correlation_id: str) -> str | None:
        req, approvals = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        refusal = self._decision_refusal(req, actor, approvals, approving=False, states=_WITHDRAWABLE)
        if refusal:
            return self._refuse(req, actor, refusal, correlation_id, "deny")
        if req.state in _UNDER_WAY:
            return self._withdraw(req, actor, correlation_id, denied=True, reason=reason)
        with self.begin() as session:
            done = store.requests.transition(session, request_id=req.id, expected=predecessors(RequestState.DENIED),
                                             to=RequestState.DENIED, changes={"decided_at": self.clock()},
                                             audit=AuditDraft(actor=actor, action=AuditAction.DENIED,
                                                              correlation_id=correlation_id, detail={"reason": reason}))
        if done is None:
            return self._lost_race(req.id, actor, correlation_id, denied=True, reason=reason)
        self._announce(done, messages.requests.denied(actor, reason), decided_by=actor, note=reason)
        return None

    def cancel(self, *, request_id: str, actor: str, correlation_id: str) -> str | None:
        req, _ = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        refusal = cancel_refusal(actor=actor, requester=req.requester)
        if refusal is None and req.state in _UNDER_WAY:
            return self._withdraw(req, actor, correlation_id, denied=False)
        if refusal is None and req.state not in predecessors(RequestState.CANCELLED):
            refusal = Refusal.NOT_PENDING
        if refusal:
            return self._refuse(req, actor, refusal, correlation_id, "cancel")
        with self.begin() as session:
            done = store.requests.transition(session, request_id=req.id, expected=predecessors(RequestState.CANCELLED),
                                             to=RequestState.CANCELLED, changes={"decided_at": self.clock()},
                                             audit=AuditDraft(actor=actor, action=AuditAction.CANCELLED,
                                                              correlation_id=correlation_id))
        if done is None:
            return self._lost_race(req.id, actor, correlation_id, denied=False)
        self._announce(done, messages.requests.cancelled(actor), decided_by=actor)
        return None

    def _lost_race(self, request_id: str, actor: str, correlation_id: str, *, denied: bool,
                   reason: str = "") -> str:
        """A Deny or Cancel whose compare-and-set lost to a move made meanwhile (the reset started, another
        decision landed): read the request again and answer for where it stands now, never silently."""
        with self.reading() as session:
            now = store.requests.get_request(session, request_id=request_id)
        if now is None:
            return messages.requests.request_not_found(request_id)
        if now.state in _UNDER_WAY:
            return self._withdraw(now, actor, correlation_id, denied=denied, reason=reason)
        return self._refuse(now, actor, Refusal.NOT_PENDING, correlation_id, "deny" if denied else "cancel")

    def _withdraw(self, req: ResetRequest, actor: str, correlation_id: str, *, denied: bool,
                  reason: str = "") -> str:
        """A Cancel or Deny that arrives once the reset has started (pressed on a message not yet redrawn): Entra
        cannot be stopped, but the person calling it off has said nobody should read the result. Recorded on the
        locked row, so the reset's verdict (which reads it in its own transaction) discards the password instead
        of sealing it; a verdict that won the race has sealed it already, and it is discarded here, unless a Reveal
        is showing it right now: then the trail keeps that reveal and everyone is told to treat it as read."""
        detail: dict[str, object] = {"by": "deny" if denied else "cancel", **({"reason": reason} if reason else {})}
        now = self.clock()
        with self.begin() as session:
            current = store.requests.lock_request(session, request_id=req.id)
            state = current.state if current is not None else None
            found = store.sealed.discard_sealed(session, request_id=req.id, now=now) \
                if state == RequestState.SUCCEEDED else store.sealed.Discard.NONE
            discarded = found == store.sealed.Discard.DISCARDED
            revealing = found == store.sealed.Discard.REVEALING
            if revealing:
                detail["reveal_under_way"] = True
            if state == RequestState.RESETTING or found != store.sealed.Discard.NONE:
                store.audit.append_audit(session, draft=AuditDraft(
                    actor=actor, action=AuditAction.RESET_WITHDRAWN, request_id=req.id,
                    correlation_id=correlation_id, detail=detail))
            if discarded:
                store.audit.append_audit(session, draft=AuditDraft(
                    actor=actor, action=AuditAction.UNREVEALED_DISCARDED, request_id=req.id,
                    correlation_id=correlation_id, detail={"reason": "withdrawn"}))
                store.followups.skip_followups(session, request_id=req.id, kind=FollowUpKind.REPLACED, now=now)
        if current is None or not (state == RequestState.RESETTING or discarded or revealing):
            return self._refuse(current or req, actor, Refusal.NOT_PENDING, correlation_id,
                                "deny" if denied else "cancel")
        if revealing:
            self._thread(current, messages.reset.withdrawn_while_revealing(actor, denied=denied))
            return messages.reset.withdrawn_while_revealing_answer()
        if discarded:
            self._thread(current, messages.reset.secret_discarded_withheld("withdrawn", current.target_display))
            return messages.reset.withdrawn_discarded_answer()
        self._thread(current, messages.reset.withdrawn_thread(actor, denied=denied, tap=bool(current.tap)))
        return messages.reset.withdrawn_answer()

    def confirm(self, *, request_id: str, actor: str, yes: bool, correlation_id: str) -> str | None:
        """The target's answer to "Did you ask helpdesk for this?"; a No cancels and alerts security. A No is
        never too late: once the request is decided or done it still alerts security and the thread
        (:meth:`_late_no`)."""
        req, approvals = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        if actor != req.target_slack_id:
            return self._refuse(req, actor, Refusal.ONLY_TARGET_CONFIRMS, correlation_id, "confirm")
        if req.state != RequestState.PENDING_APPROVAL or req.confirmation != "pending":
            if not yes:
                return self._late_no(req.id, actor, correlation_id)
            return self._refuse(req, actor, Refusal.NOT_PENDING, correlation_id, "confirm")
        if yes and req.requester not in self.notifier.group_members(self.rules.agents_group,
                                                                      max_age=MEMBERS_FOR_A_DECISION_S):
            # A Yes may be what completes the approval (required mode, approver first): it checks what an
            # approval checks, so a requester who left the helpdesk since asking gets nothing through it.
            return self._refuse(req, actor, Refusal.REQUESTER_NOT_AN_AGENT, correlation_id, "confirm")
        action = AuditAction.TARGET_CONFIRMED if yes else AuditAction.TARGET_DISOWNED
        with self.begin() as session:
            changed = store.requests.set_confirmation(session, request_id=req.id, expected="pending",
                                                      to="yes" if yes else "no",
                                                      audit=AuditDraft(actor=actor, action=action,
                                                                       correlation_id=correlation_id))
            done = None
            if changed is not None and not yes:
                done = store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                                 to=RequestState.CANCELLED, changes={"decided_at": self.clock()},
                                                 audit=AuditDraft(actor=actor, action=AuditAction.CANCELLED,
                                                                  correlation_id=correlation_id,
                                                                  detail={"by": "target", "answer": "no"}))
            elif changed is not None:
                # Counted after the confirmation's UPDATE locked the row: an approval committed since _load counts.
                approvals = [a.approver for a in store.requests.list_approvals(session, request_id=req.id)]
                if len(approvals) >= changed.approvals_required:
                    done = self._approve_if_ready(session, changed, SYSTEM, correlation_id)
        if changed is None:
            # A Yes already counted, or the request moved on since it was read (approved, say): a No still counts.
            return None if yes else self._late_no(req.id, actor, correlation_id)
        self._tell_confirmation(req, actor, yes=yes, done=done, approvals=approvals, correlation_id=correlation_id)
        if yes:
            self._after_target_yes(changed, actor, correlation_id)
        return messages.requests.confirm_answered(yes)

    def _after_target_yes(self, req: ResetRequest, actor: str, correlation_id: str) -> None:
        """What else the target's recorded Yes makes happen (caller verification overrides it)."""

    def _tell_confirmation(self, req: ResetRequest, actor: str, *, yes: bool, done: ResetRequest | None,
                           approvals: Sequence[str], correlation_id: str) -> None:
        """What the target's recorded answer makes happen: a No is said in the thread (when it cancelled) and to
        security; a Yes in the thread, and, when it was the last thing the request waited for, the reset starts."""
        if not yes:
            if done is not None:
                self._announce(done, messages.requests.cancelled_by_target(actor), decided_by=actor)
            if self.rules.security_channel:
                self.notifier.post(self.rules.security_channel, messages.requests.security_target_disowned(req))
            return
        self._thread(req, messages.requests.target_confirmed(actor))
        if done is not None:
            self._announce(done, messages.requests.approved(approvals), decided_by=None, approvals=approvals)
            self._start_reset(done, correlation_id)

    def _late_no(self, request_id: str, actor: str, correlation_id: str) -> str | None:
        """The target's No to a request no longer pending, or after their own Yes. A request whose reset has not
        begun (still waiting for its approver, or approved) is cancelled; a reset already made is disowned as with
        "This wasn't me" (security alerted, the thread told); anything else (denied, expired, refused, failed, or
        the reset under way) is said to security and the thread as it stands. Recorded once: a repeated No says
        nothing more."""
        with self.begin() as session:
            req = store.requests.disown(session, request_id=request_id, audit=AuditDraft(
                actor=actor, action=AuditAction.TARGET_DISOWNED, correlation_id=correlation_id,
                detail={"late": True}))
            cancelled = None
            if req is not None and req.state in _NOT_STARTED:
                cancelled = store.requests.transition(
                    session, request_id=request_id, expected=_NOT_STARTED, to=RequestState.CANCELLED,
                    changes={"decided_at": self.clock()}, audit=AuditDraft(
                        actor=actor, action=AuditAction.CANCELLED, correlation_id=correlation_id,
                        detail={"by": "target", "answer": "no"}))
                req = store.requests.get_request(session, request_id=request_id)
        if req is None:
            return None
        if cancelled is not None:
            self._announce(cancelled, messages.requests.cancelled_by_target(actor), decided_by=actor)
            if self.rules.security_channel:
                self.notifier.post(self.rules.security_channel, messages.requests.security_target_disowned(req))
            return messages.requests.confirm_answered(False)
        if req.state == RequestState.SUCCEEDED and self.disowned_after_reset is not None:
            return self.disowned_after_reset(request_id=req.id, actor=actor, correlation_id=correlation_id)
        self._thread(req, messages.requests.late_no_in_thread(actor, req.state))
        if self.rules.security_channel:
            self.notifier.post(self.rules.security_channel, messages.requests.security_late_no(req))
        return messages.requests.late_no_answered(req.state)

    def _decision_refusal(self, req: ResetRequest, actor: str, approvals: Sequence[str], *, approving: bool,
                          states: frozenset[RequestState] = frozenset({RequestState.PENDING_APPROVAL}),
                          ) -> Refusal | None:
        if req.state not in states:
            return Refusal.NOT_PENDING
        in_group = bool(req.approver_group) and actor in self.notifier.group_members(
            req.approver_group or "", max_age=MEMBERS_FOR_A_DECISION_S)
        refusal = approval_refusal(
            actor=actor, requester=req.requester, target=req.target_slack_id,
            approvers=approvers_for(source=ApproverSource.MANAGER_OR_GROUP, manager=req.manager_slack_id,
                                    group_handle=req.approver_group, requester=req.requester,
                                    target=req.target_slack_id),
            actor_in_group=in_group, already_approved=approving and actor in approvals,
        )
        # Slack ids said yes; the people behind them are compared by Entra object id (asked only of someone
        # otherwise eligible, so a bystander's click costs no Graph call).
        return refusal or identity_refusal(actor=self.resolver.entra_id_of(actor),
                                           requester=self.resolver.entra_id_of(req.requester),
                                           target=req.target_entra_id)

    def _refuse(self, req: ResetRequest, actor: str, refusal: Refusal, correlation_id: str, attempted: str) -> str:
        self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                               correlation_id=correlation_id, detail={"attempted": attempted, "reason": refusal}))
        return messages.requests.refusal(refusal, req.id)

    # --- the scheduler's sweep --------------------------------------------------------------------------------

    def sweep(self, *, now: datetime | None = None) -> tuple[int, int]:
        """Escalate requests past half-time and expire those past their deadline; (escalated, expired).

        Safe to run on every replica at once: each change is a compare-and-set, and only its winner posts."""
        now = now or self.clock()
        escalated = expired = 0
        with self.reading() as session:
            due = [r.id for r in store.requests.due_for_escalation(session, now=now)]
        for request_id in due:
            with self.begin() as session:
                req = store.requests.mark_escalated(session, request_id=request_id, at=now, audit=AuditDraft(
                    actor="scheduler", action=AuditAction.ESCALATED))
            if req is not None:
                escalated += 1
                self._thread(req, messages.requests.escalation(req, self._group_id(req)))
        with self.reading() as session:
            due = [r.id for r in store.requests.due_for_expiry(session, now=now)]
        for request_id in due:
            with self.begin() as session:
                done = store.requests.transition(session, request_id=request_id,
                                                 expected={RequestState.PENDING_APPROVAL},
                                                 to=RequestState.EXPIRED, changes={"decided_at": now},
                                                 audit=AuditDraft(actor="scheduler", action=AuditAction.EXPIRED))
            if done is not None:
                expired += 1
                minutes = int(self.rules.ttl.total_seconds() // 60)
                self._announce(done, messages.requests.expired(minutes), decided_by=None)
        self._sweep_verifications(now)
        return escalated, expired

    def _sweep_verifications(self, now: datetime) -> None:
        """Ends verifications left under way (caller verification overrides it)."""
