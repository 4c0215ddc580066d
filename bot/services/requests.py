"""Reset requests and approvals: the product's rules from ``/reset`` to ``approved`` (spec sections 1-3).

Every method gathers facts (Slack, Entra, AD, the database), asks the pure rules in ``bot.domain.rules``,
and acts: one compare-and-set per state change (so double clicks, Slack redeliveries and replicas produce one
transition), one audit event per transition and per refusal, and the thread and request message updated to
match. Methods return the sentence to show privately to the person who acted, or None when there is none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel import Session

from bot import messages, store
from bot.clients.directory import Directory, DirectoryUser
from bot.clients.slack_notify import Notifier
from bot.db import SessionFactory
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.health_state import HealthReport
from bot.domain.lifecycle import RequestState, deadlines, predecessors, required_approvals
from bot.domain.parse import ParseError, TargetKind, parse_reset, parse_target
from bot.domain.rules import (
    Protection,
    Refusal,
    allowed_by_rule,
    approval_refusal,
    approvers_for,
    cancel_refusal,
    identity_refusal,
    protection_reasons,
)
from bot.errors import ResetbotError
from bot.models import ResetRequest, normalize_request_id, utcnow
from bot.services.resolve import ResolveFailure, ResolveProblem, Target, TargetResolver
from bot.settings import ApproverSource, Settings, TargetConfirmation

log = logging.getLogger(__name__)

SYSTEM = "system"


class Readiness(Protocol):
    """``LinkService.readiness``: None when the acting identity may make this reset (``tap``: this Temporary Access
    Pass) of a target holding ``target_roles``, else the sentence saying why not."""

    def __call__(self, requester: str, target_roles: Sequence[str], /, *, tap: bool = False) -> str | None: ...


#: A request in these states has not started its reset: the target's No still cancels it, even after their Yes.
_NOT_STARTED = frozenset({RequestState.PENDING_APPROVAL, RequestState.APPROVED})

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
        )


@dataclass
class RequestService:
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

    # --- /reset ----------------------------------------------------------------------------------------------

    def create(self, *, requester: str, channel: str, text: str, correlation_id: str,
               source_key: str | None = None) -> str | None:
        """Everything after the ack of ``/reset``: checks, the request, its thread, the approver's DM.

        ``source_key`` (the command's trigger_id) makes a redelivered command a no-op (None: nothing to say)."""
        if source_key is not None:
            with self.begin() as session:
                if store.requests.find_by_source(session, source_key=source_key) is not None:
                    return None
        def refuse(reason: str, sentence: str, **detail: object) -> str:
            self._audit(AuditDraft(actor=requester, action=AuditAction.REFUSED, correlation_id=correlation_id,
                                   detail={"stage": "request", "reason": reason, "input": text[:200], **detail}))
            return sentence

        if requester not in self.notifier.group_members(self.rules.agents_group, fresh=True):
            return refuse(Refusal.NOT_AN_AGENT, messages.requests.not_an_agent(
                self.notifier.group_handle(self.rules.agents_group)))
        parsed = parse_reset(text)
        if isinstance(parsed, ParseError):
            return refuse(parsed.problem, messages.requests.parse_problem(parsed))
        if parsed.target.kind == TargetKind.SLACK_USER and parsed.target.value == requester:
            return refuse(Refusal.SELF_RESET, messages.requests.self_reset())
        found = self.resolver.resolve(parsed.target)
        if isinstance(found, ResolveProblem):
            return refuse(found.failure, self._resolve_sentence(found))
        target = found
        requester_entra = self.resolver.entra_id_of(requester)
        if requester_entra is None:
            return refuse(Refusal.REQUESTER_NOT_MATCHED, messages.requests.requester_not_matched(),
                          target=target.entra.user_principal_name)
        if target.slack_id == requester or requester_entra == target.entra.id:
            return refuse(Refusal.SELF_RESET, messages.requests.self_reset(), target=target.entra.user_principal_name)
        if target.slack_id is None and self.rules.target_confirmation == TargetConfirmation.REQUIRED:
            return refuse("target_not_in_slack", messages.requests.target_cannot_confirm(
                target.name, target.entra.user_principal_name), target=target.entra.user_principal_name)
        problem = self._account_problem(target, unlock=parsed.unlock)
        if problem:
            return refuse(problem[0], problem[1], target=target.entra.user_principal_name)
        assert target.ad is not None  # _account_problem refused a target missing from AD
        reasons, target_roles = self._protection(target.ad, target.entra.id, target.slack_id)
        if reasons and not allowed_by_rule(sam=target.ad.sam, upn=target.entra.user_principal_name,
                                           allowed=self.rules.protected_allowed):
            return refuse("protected", messages.requests.protected_refused(target.name, reasons),
                          target=target.entra.user_principal_name, protection=",".join(reasons))
        not_ready = self.readiness(requester, target_roles, tap=parsed.tap) if self.readiness else None
        if not_ready:
            return refuse("not_ready", not_ready, target=target.entra.user_principal_name)
        return self._open_request(requester=requester, channel=channel, target=target, reason=parsed.reason,
                                  unlock=parsed.unlock, tap=parsed.tap, protection=",".join(reasons),
                                  correlation_id=correlation_id, source_key=source_key)

    def _protection(self, ad: DirectoryUser, entra_id: str,
                    slack_id: str | None) -> tuple[list[Protection], tuple[str, ...]]:
        """(why the account is protected, the Entra roles it holds now): AD's adminCount and protected groups, every
        Entra role held or PIM-eligible, and whether it is one of the bot's own agents or approvers (by Slack id)."""
        roles = self.resolver.admin_roles(entra_id)
        operators = set(self.notifier.group_members(self.rules.agents_group))
        if self.rules.approvers_group:
            operators |= set(self.notifier.group_members(self.rules.approvers_group))
        reasons = protection_reasons(
            admin_count=ad.admin_count,
            in_protected_group=self.directory.is_member_of_any(ad.dn, self.rules.protected_group_dns),
            entra_roles=roles.active, eligible_roles=roles.eligible, operator=slack_id in operators,
        )
        return reasons, roles.active

    def recheck(self, req: ResetRequest) -> tuple[str, str] | None:
        """Right before the credential is set (a request may wait up to the approval TTL for its approver): the
        target's protection and the acting identity's role, read again. None to go on; otherwise (reason, the
        thread's sentence), and nothing may be set. Protection that appeared since the request was made refuses even
        where a rule names the account: such a request never had its two approvers nor told security. What cannot
        be read now refuses too (fail closed)."""
        try:
            ad = self.directory.find_user(dn=req.target_dn) if req.target_dn else None
            if ad is None:
                return "recheck_failed", messages.requests.recheck_failed(
                    req.target_display, "the account is no longer where it was in Active Directory")
            reasons, roles = self._protection(ad, req.target_entra_id, req.target_slack_id)
            allowed = allowed_by_rule(sam=ad.sam, upn=req.target_upn, allowed=self.rules.protected_allowed)
            if reasons and not (allowed and req.protected):
                return "protected", messages.requests.protected_now(req.target_display, reasons,
                                                                    was_protected=bool(req.protected))
            not_ready = self.readiness(req.requester, roles, tap=req.tap) if self.readiness else None
        except ResetbotError as e:
            log.warning("request %s: the check before the reset could not be made: %s", req.id, type(e).__name__)
            return "recheck_failed", messages.requests.recheck_failed(req.target_display, str(e))
        if not_ready:
            return "not_ready", messages.requests.not_ready_now(req.requester, not_ready)
        return None

    def _account_problem(self, target: Target, *, unlock: bool) -> tuple[str, str] | None:
        """(reason, sentence) when the account itself rules a reset out: not synced, not in AD, disabled, or
        locked out without ``--unlock`` (writeback refuses a locked-out account: Entra Connect event 33006)."""
        if not target.entra.on_premises_sync_enabled:
            return "not_synced", messages.requests.not_synced(target.name)
        if target.ad is None:
            return "not_in_ad", messages.requests.not_in_ad(target.name)
        if target.entra.account_enabled is False or target.ad.disabled:
            return "disabled", messages.requests.account_disabled(target.name)
        if unlock and not self.directory.can_unlock:
            return "unlock_unavailable", messages.requests.unlock_unavailable()
        if target.ad.locked_out and not unlock:
            return "locked_out", messages.requests.locked_out_needs_unlock(target.name)
        return None

    def _resolve_sentence(self, problem: ResolveProblem) -> str:
        match problem.failure:
            case ResolveFailure.UNKNOWN:
                return messages.requests.unknown_user(problem.text)
            case ResolveFailure.AMBIGUOUS:
                return messages.requests.ambiguous_user(problem.text, problem.candidates)
            case ResolveFailure.SLACK_USER_WITHOUT_EMAIL:
                return messages.requests.not_in_directory_slack_user()
            case ResolveFailure.NOT_IN_ENTRA:
                return messages.requests.in_ad_not_in_entra(problem.text, *problem.candidates[0])
            case ResolveFailure.NOT_EXACT:
                return messages.requests.only_a_near_match(problem.text, *problem.candidates[0])

    def _open_request(self, *, requester: str, channel: str, target: Target, reason: str, unlock: bool, tap: bool,
                      protection: str, correlation_id: str, source_key: str | None) -> str | None:
        assert target.ad is not None
        approvers = approvers_for(source=self.rules.approver_source, manager=self.resolver.manager_slack_id(
            target.entra), group_handle=self.rules.approvers_group, requester=requester, target=target.slack_id)
        confirm = self.rules.target_confirmation != TargetConfirmation.OFF and target.slack_id is not None
        now = self.clock()
        due = deadlines(now, self.rules.ttl)
        with self.begin() as session:
            req = store.requests.create_request(
                session, requester=requester, requester_display=self.notifier.name_of(requester),
                target_entra_id=target.entra.id, target_upn=target.entra.user_principal_name,
                target_sam=target.ad.sam, target_dn=target.ad.dn, target_guid=target.ad.object_guid or None,
                target_display=target.name,
                reason=reason, unlock=unlock, tap=tap,
                approvals_required=required_approvals(protected=bool(protection),
                                                      target_in_slack=target.slack_id is not None),
                target_slack_id=target.slack_id, manager_slack_id=approvers.manager,
                approver_group=approvers.group_handle, protected=protection,
                confirmation="pending" if confirm else "off", source_key=source_key, escalate_at=due.escalate_at,
                expires_at=due.expires_at, created_at=now,
                audit=AuditDraft(actor=requester, action=AuditAction.REQUESTED, correlation_id=correlation_id,
                                 detail={"reason": reason, "unlock": unlock, "tap": tap, "protected": protection,
                                         "manager": approvers.manager, "approver_group": approvers.group_handle,
                                         "target_in_slack": target.slack_id is not None}),
            )
        if req is None:
            return None  # the same command, delivered again while the first delivery was being served
        posted_in = self._post_request(req, channel)
        group_id = self._group_id(req)
        self.notifier.post(posted_in, messages.requests.approver_mention(req, group_id), thread_ts=req.thread_ts)
        if req.manager_slack_id:
            self.notifier.dm(req.manager_slack_id, messages.requests.approver_dm(req, posted_in))
        if req.protected and self.rules.security_channel:
            self.notifier.post(self.rules.security_channel, messages.requests.security_protected_request(req))
        if confirm and req.target_slack_id:
            self.notifier.dm(req.target_slack_id, messages.requests.confirm_question_text(req),
                             blocks=messages.requests.confirm_question_blocks(req))
        self._refresh_homes(req)
        return messages.requests.request_created(req.id, posted_in)

    def _post_request(self, req: ResetRequest, channel: str) -> str:
        """Post the request message where the agent typed, or in the requests channel when that was a DM (or the
        bot is not in that channel); record where, so every later message joins its thread."""
        candidates = [c for c in (channel, self.rules.requests_channel) if c and not c.startswith("D")]
        last_error: ResetbotError | None = None
        for where in dict.fromkeys(candidates):
            try:
                ts = self.notifier.post(where, messages.requests.request_text(req),
                                        blocks=messages.requests.request_blocks(req, approvals=[],
                                                                                group_id=self._group_id(req)))
            except ResetbotError as e:
                last_error = e
                continue
            with self.begin() as session:
                store.requests.attach_message(session, request_id=req.id, channel_id=where, thread_ts=ts)
            req.channel_id, req.thread_ts = where, ts
            return where
        raise last_error or ResetbotError(messages.requests.request_not_posted())

    # --- approve / deny / cancel / confirm ----------------------------------------------------------------

    def approve(self, *, request_id: str, actor: str, correlation_id: str) -> str | None:
        req, approvals = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        if actor in approvals and req.state != RequestState.PENDING_APPROVAL:
            return None  # a repeat of the click that already counted (double click, redelivery): nothing to say
        refusal = self._decision_refusal(req, actor, approvals, approving=True)
        if refusal is None and req.requester not in self.notifier.group_members(self.rules.agents_group, fresh=True):
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
        return None

    def _start_reset(self, req: ResetRequest, correlation_id: str) -> None:
        if self.after_approval is not None:
            self.after_approval(req, correlation_id=correlation_id)

    def _waiting_for_target(self, req: ResetRequest) -> bool:
        return self.rules.target_confirmation == TargetConfirmation.REQUIRED and req.confirmation == "pending"

    def _approve_if_ready(self, session: Session, req: ResetRequest, actor: str,
                          correlation_id: str) -> ResetRequest | None:
        """pending → approved, unless the target still has to confirm (required mode)."""
        if self._waiting_for_target(req):
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
        refusal = self._decision_refusal(req, actor, approvals, approving=False)
        return self._refuse(req, actor, refusal, correlation_id, "deny") if refusal else None

    def deny(self, *, request_id: str, actor: str, reason: str, correlation_id: str) -> str | None:
        req, approvals = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        refusal = self._decision_refusal(req, actor, approvals, approving=False)
        if refusal:
            return self._refuse(req, actor, refusal, correlation_id, "deny")
        with self.begin() as session:
            done = store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                             to=RequestState.DENIED, changes={"decided_at": self.clock()},
                                             audit=AuditDraft(actor=actor, action=AuditAction.DENIED,
                                                              correlation_id=correlation_id, detail={"reason": reason}))
        if done is not None:
            self._announce(done, messages.requests.denied(actor, reason), decided_by=actor, note=reason)
        return None

    def cancel(self, *, request_id: str, actor: str, correlation_id: str) -> str | None:
        req, _ = self._load(request_id)
        if req is None:
            return messages.requests.request_not_found(request_id)
        refusal = cancel_refusal(actor=actor, requester=req.requester)
        if refusal is None and req.state not in predecessors(RequestState.CANCELLED):
            refusal = Refusal.NOT_PENDING
        if refusal:
            return self._refuse(req, actor, refusal, correlation_id, "cancel")
        with self.begin() as session:
            done = store.requests.transition(session, request_id=req.id, expected=predecessors(RequestState.CANCELLED),
                                             to=RequestState.CANCELLED, changes={"decided_at": self.clock()},
                                             audit=AuditDraft(actor=actor, action=AuditAction.CANCELLED,
                                                              correlation_id=correlation_id))
        if done is not None:
            self._announce(done, messages.requests.cancelled(actor), decided_by=actor)
        return None

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
        return messages.requests.confirm_answered(yes)

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

    def _decision_refusal(self, req: ResetRequest, actor: str, approvals: Sequence[str], *,
                          approving: bool) -> Refusal | None:
        if req.state != RequestState.PENDING_APPROVAL:
            return Refusal.NOT_PENDING
        in_group = bool(req.approver_group) and actor in self.notifier.group_members(req.approver_group or "")
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
        with self.begin() as session:
            due = [r.id for r in store.requests.due_for_escalation(session, now=now)]
        for request_id in due:
            with self.begin() as session:
                req = store.requests.mark_escalated(session, request_id=request_id, at=now, audit=AuditDraft(
                    actor="scheduler", action=AuditAction.ESCALATED))
            if req is not None:
                escalated += 1
                self._thread(req, messages.requests.escalation(req, self._group_id(req)))
        with self.begin() as session:
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
        return escalated, expired

    # --- /reset-status and App Home ---------------------------------------------------------------------------

    def status(self, *, actor: str, text: str, correlation_id: str = "") -> str:
        """``/reset-status``. Agents and approvers look up any request and anyone (a directory search, the
        timeline naming who acted); everyone else sees only the requests about their own account, found by their
        Entra object id, and no one else's: a name or someone else's request id is refused (and audited) with
        the same sentence whether or not it exists, so the command neither searches the directory nor tells
        which request ids are real."""
        text = text.strip()
        if not self._may_look_up(actor):
            return self._own_status(actor=actor, text=text, correlation_id=correlation_id)
        if not text:
            with self.begin() as session:
                mine = store.requests.find_requests(session, requester=actor, limit=10)
            return messages.status.request_list("Your recent requests", mine)
        request_id = normalize_request_id(text)
        if request_id:
            with self.begin() as session:
                req = store.requests.get_request(session, request_id=request_id)
                events = store.audit.audit_for_request(session, request_id=request_id) if req else []
            return messages.status.timeline(req, events) if req else messages.requests.request_not_found(text)
        ref = parse_target(text)
        if ref is None:
            return messages.status.status_usage()
        found = self.resolver.resolve(ref)
        if isinstance(found, ResolveProblem):
            return self._resolve_sentence(found)
        with self.begin() as session:
            reqs = store.requests.find_requests(session, target_upn=found.entra.user_principal_name, limit=10)
        if not reqs:
            return messages.status.no_requests_for(found.name)
        return messages.status.request_list(messages.status.requests_for(found.name), reqs)

    def _may_look_up(self, actor: str) -> bool:
        groups = [g for g in (self.rules.agents_group, self.rules.approvers_group) if g]
        return any(actor in self.notifier.group_members(g) for g in groups)

    def _own_status(self, *, actor: str, text: str, correlation_id: str) -> str:
        me = self.resolver.entra_id_of(actor)
        request_id = normalize_request_id(text) if text else None
        if me is not None and not text:
            with self.begin() as session:
                mine = store.requests.find_requests(session, target_entra_id=me, limit=10)
            return messages.status.request_list(messages.status.about_you(), mine)
        if me is not None and request_id:
            with self.begin() as session:
                req = store.requests.get_request(session, request_id=request_id)
                if req is not None and req.target_entra_id == me:
                    return messages.status.timeline(req, store.audit.audit_for_request(session,
                                                                                       request_id=request_id))
        self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, correlation_id=correlation_id or None,
                               detail={"stage": "status", "reason": "not_helpdesk" if me else
                                       Refusal.REQUESTER_NOT_MATCHED, "input": text[:200]}))
        if me is None:
            return messages.status.not_matched()
        return messages.status.only_your_own(request_id)

    def home(self, *, user: str, health: HealthReport | None = None) -> None:
        with self.begin() as session:
            # Every pending request (up to a bound no helpdesk reaches), so App Home's count of the rest is right.
            pending = store.requests.find_requests(session, states={RequestState.PENDING_APPROVAL}, limit=1000)
            mine = store.requests.find_requests(session, requester=user, limit=messages.home.HOME_LIST_SHOWN)
            mine_total = store.requests.count_requests(session, requester=user)
        mine_pending = [r for r in pending if self._may_approve(r, user)]
        self.notifier.publish_home(user, messages.home.home_view(pending_for_me=mine_pending, mine=mine,
                                                                health=health, mine_total=mine_total))

    def _may_approve(self, req: ResetRequest, user: str) -> bool:
        if user in (req.requester, req.target_slack_id):
            return False
        return user == req.manager_slack_id or (
            bool(req.approver_group) and user in self.notifier.group_members(req.approver_group or ""))

    # --- helpers -------------------------------------------------------------------------------------------------

    def _load(self, request_id: str) -> tuple[ResetRequest | None, list[str]]:
        canonical = normalize_request_id(request_id) or request_id
        with self.begin() as session:
            req = store.requests.get_request(session, request_id=canonical)
            if req is None:
                return None, []
            approvals = [a.approver for a in store.requests.list_approvals(session, request_id=canonical)]
        return req, approvals

    def _audit(self, draft: AuditDraft) -> None:
        with self.begin() as session:
            store.audit.append_audit(session, draft=draft)

    def _group_id(self, req: ResetRequest) -> str | None:
        return self.notifier.group_id(req.approver_group) if req.approver_group else None

    def _thread(self, req: ResetRequest, text: str) -> None:
        if req.channel_id and req.thread_ts:
            self.notifier.post(req.channel_id, text, thread_ts=req.thread_ts)

    def _redraw(self, req: ResetRequest, *, approvals: Sequence[str] = (), decided_by: str | None = None,
                note: str | None = None) -> None:
        if req.channel_id and req.thread_ts:
            self.notifier.update(req.channel_id, req.thread_ts, messages.requests.request_text(req),
                                 blocks=messages.requests.request_blocks(req, approvals=approvals,
                                                                          group_id=self._group_id(req),
                                                                          decided_by=decided_by, note=note))

    def _announce(self, req: ResetRequest, text: str, *, decided_by: str | None, note: str | None = None,
                  approvals: Sequence[str] = ()) -> None:
        """After a state change: redraw the request message, say it in the thread, refresh App Homes."""
        self._redraw(req, approvals=approvals, decided_by=decided_by, note=note)
        self._thread(req, text)
        self._refresh_homes(req)

    def _refresh_homes(self, req: ResetRequest) -> None:
        """Best effort: a stale App Home must never fail the action that changed it."""
        for user in dict.fromkeys(u for u in (req.requester, req.manager_slack_id) if u):
            try:
                self.home(user=user)
            except ResetbotError as e:  # one line, not a traceback per request of a burst
                log.warning("could not refresh the App Home of %s: %s", user, e)
