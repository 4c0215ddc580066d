"""Creating a reset request: ``/reset`` from the agent's text to the request in its thread, its approvers asked;
and the same checks made again right before the reset (``recheck``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from bot import messages, store
from bot.clients.directory import Directory, DirectoryUser
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.groups import MEMBERS_FOR_A_DECISION_S, MEMBERS_FOR_A_REQUEST_S
from bot.domain.lifecycle import RequestState, deadlines, required_approvals
from bot.domain.parse import ParseError, TargetKind, parse_reset
from bot.domain.rules import Protection, Refusal, allowed_by_rule, approvers_for, protection_reasons
from bot.domain.verification import VerifyState
from bot.errors import ResetbotError
from bot.models import ResetRequest
from bot.services.request_limits import RequestLimits
from bot.services.resolve import ResolveProblem, Target
from bot.settings import Delivery, TargetConfirmation, VerifyMethod

if TYPE_CHECKING:
    from bot.services.requests import Readiness

#: Logged under the service's name, as before the service was split in modules: operators' log filters name it.
log = logging.getLogger("bot.services.requests")


class RequestIntake(RequestLimits):
    """``/reset``: the checks, the request, its thread and the approvers' DMs; ``recheck`` before the reset."""

    # RequestService's fields these methods read (declared here for the type checker; the dataclass sets them).
    directory: Directory
    clock: Callable[[], datetime]
    readiness: Readiness | None
    start_verification: Callable[..., str | None]
    verification_refusal: Callable[..., str | None]

    # --- /reset ----------------------------------------------------------------------------------------------

    def create(self, *, requester: str, channel: str, text: str, correlation_id: str,
               source_key: str | None = None) -> str | None:
        """Everything after the ack of ``/reset``: checks, the request, its thread, the approver's DM.

        ``source_key`` (the command's trigger_id) makes a redelivered command a no-op (None: nothing to say)."""
        if source_key is not None:
            with self.reading() as session:
                if store.requests.find_by_source(session, source_key=source_key) is not None:
                    return None
        def refuse(reason: str, sentence: str, **detail: object) -> str:
            self._audit(AuditDraft(actor=requester, action=AuditAction.REFUSED, correlation_id=correlation_id,
                                   detail={"stage": "request", "reason": reason, "input": text[:200], **detail}))
            return sentence

        if not self._is_member(requester, self.rules.agents_group, max_age=MEMBERS_FOR_A_REQUEST_S):
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
        unreachable = self._target_must_be_in_slack(target)
        if unreachable:
            return refuse("target_not_in_slack", unreachable, target=target.entra.user_principal_name)
        problem = self._account_problem(target, unlock=parsed.unlock)
        if problem:
            return refuse(problem[0], problem[1], target=target.entra.user_principal_name)
        assert target.ad is not None  # _account_problem refused a target missing from AD
        reasons, target_roles = self._protection(target.ad, target.entra.id, target.slack_id)
        if reasons and not allowed_by_rule(sam=target.ad.sam, upn=target.entra.user_principal_name,
                                           allowed=self.rules.protected_allowed):
            return refuse("protected", messages.requests.protected_refused(target.name, reasons),
                          target=target.entra.user_principal_name, protection=",".join(reasons))
        not_ready = self.readiness(requester, target_roles, tap=parsed.tap,
                                   revoke_sessions=parsed.revoke_sessions) if self.readiness else None
        if not_ready:
            return refuse("not_ready", not_ready, target=target.entra.user_principal_name)
        created = self._open_request(requester=requester, channel=channel, target=target, reason=parsed.reason,
                                     unlock=parsed.unlock, tap=parsed.tap, revoke_sessions=parsed.revoke_sessions,
                                     protection=",".join(reasons),
                                     correlation_id=correlation_id, source_key=source_key)
        return self._verify_on_create(parsed.verify, created, requester=requester, source_key=source_key,
                                      correlation_id=correlation_id)

    def _verify_on_create(self, method: VerifyMethod | None, created: str | None, *, requester: str,
                          source_key: str | None, correlation_id: str) -> str | None:
        """``--verify METHOD``: the request stands; its verification starts as if its button had been pressed."""
        if method is None or created is None or source_key is None:
            return created
        with self.reading() as session:
            made = store.requests.find_by_source(session, source_key=source_key)
        if made is None:
            return created
        if method == VerifyMethod.CALLBACK:
            refused = self.verification_refusal(made, requester, method, correlation_id)
            return f"{created} {refused or messages.verification.callback_needs_button()}"
        started = self.start_verification(request_id=made.id, actor=requester, method=method,
                                          correlation_id=correlation_id)
        return f"{created} {started}" if started else created

    def _target_must_be_in_slack(self, target: Target) -> str | None:
        """The sentence when the rules need the target in Slack (their Yes is required; only they reveal the
        password) and the bot cannot match them there; None otherwise."""
        if target.slack_id is not None:
            return None
        if self.rules.target_confirmation == TargetConfirmation.REQUIRED:
            return messages.requests.target_cannot_confirm(target.name, target.entra.user_principal_name)
        if self.rules.delivery == Delivery.TARGET:
            return messages.reset.target_cannot_reveal(target.name, target.entra.user_principal_name)
        return None

    def _protection(self, ad: DirectoryUser, entra_id: str,
                    slack_id: str | None) -> tuple[list[Protection], tuple[str, ...]]:
        """(why the account is protected, the Entra roles it holds now): AD's adminCount and protected groups, every
        Entra role held or PIM-eligible, and whether it is one of the bot's own agents or approvers. That last is
        decided by Entra object id (each member's Slack account resolved to Entra), not only by Slack id: a target
        whose Slack account the bot could not match has none, and "not in the group" would pass silently. When
        some member cannot be resolved either and the target has no Slack account that leads back to them (its
        email found in Entra as this very account), nothing tells them apart: the account counts as possibly an
        operator (fail closed)."""
        roles = self.resolver.admin_roles(entra_id)
        operators = set(self.notifier.group_members(self.rules.agents_group, max_age=MEMBERS_FOR_A_REQUEST_S))
        if self.rules.approvers_group:
            operators |= set(self.notifier.group_members(self.rules.approvers_group,
                                                         max_age=MEMBERS_FOR_A_REQUEST_S))
        operator = slack_id in operators
        unverified = False
        if not operator:
            operator_ids = {self.resolver.entra_id_of(member) for member in sorted(operators)}
            operator = entra_id in operator_ids
            # A Slack account found by the target's mail proves nothing unless it leads back to the target: mail
            # is often editable on-premises, and pointed at someone else's address it would "match" them.
            unverified = None in operator_ids and (slack_id is None
                                                   or self.resolver.entra_id_of(slack_id) != entra_id)
        reasons = protection_reasons(
            admin_count=ad.admin_count,
            in_protected_group=self.directory.is_member_of_any(ad.dn, self.rules.protected_group_dns),
            entra_roles=roles.active, eligible_roles=roles.eligible, operator=operator,
            operator_unverified=unverified,
        )
        return reasons, roles.active

    def recheck(self, req: ResetRequest) -> tuple[str, str] | None:
        """Right before the credential is set (a request may wait up to the approval TTL for its approver): the
        target's protection and the acting identity's role, read again. None to go on; otherwise (reason, the
        thread's sentence), and nothing may be set. Protection that appeared since the request was made refuses even
        where a rule names the account: such a request never had its two approvers nor told security. What cannot
        be read now refuses too (fail closed). The requester must still be an agent, asked of Slack now: whatever
        completed the approval (a Duo push answered late, the target's Yes, recovery of an approved request) may
        come after they left the helpdesk."""
        try:
            agent = req.requester in self.notifier.group_members(self.rules.agents_group,
                                                                 max_age=MEMBERS_FOR_A_DECISION_S)
        except ResetbotError as e:
            log.warning("request %s: the agents' group could not be read before the reset: %s", req.id,
                        type(e).__name__)
            return "recheck_failed", messages.requests.recheck_failed(req.target_display, str(e))
        if not agent:
            return Refusal.REQUESTER_NOT_AN_AGENT.value, messages.requests.requester_left_before_reset(
                req.requester, req.target_display)
        if Delivery(req.delivery or self.rules.delivery) == Delivery.TARGET and not req.target_slack_id:
            # Refused at /reset; a row that holds it anyway would seal a password nobody may reveal: none is made.
            return "target_cannot_reveal", messages.requests.target_cannot_reveal_now(req.target_display)
        if self.rules.verify_required and req.verification != VerifyState.VERIFIED:
            return "not_verified", messages.verification.not_verified_before_reset(req.target_display)
        try:
            # By objectGUID, as the reset itself: a rename or move since the request (and another account put at
            # the old DN) cannot point this check at someone else. A request stored before the GUID was kept has
            # only its DN, which names whoever sits there now: it is refused (fail closed), never read by DN.
            if not req.target_guid:
                return "recheck_failed", messages.requests.recheck_failed(
                    req.target_display, "the request was made before the bot kept which account it was for")
            ad = self.directory.find_user(guid=req.target_guid)
            if ad is None:
                return "recheck_failed", messages.requests.recheck_failed(
                    req.target_display, "the account is no longer in Active Directory")
            reasons, roles = self._protection(ad, req.target_entra_id, req.target_slack_id)
            allowed = allowed_by_rule(sam=ad.sam, upn=req.target_upn, allowed=self.rules.protected_allowed)
            if reasons and not (allowed and req.protected):
                return "protected", messages.requests.protected_now(req.target_display, reasons,
                                                                    was_protected=bool(req.protected))
            not_ready = self.readiness(req.requester, roles, tap=req.tap,
                                       revoke_sessions=req.revoke_sessions) if self.readiness else None
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

    def _open_request(self, *, requester: str, channel: str, target: Target, reason: str, unlock: bool, tap: bool,
                      revoke_sessions: bool, protection: str, correlation_id: str,
                      source_key: str | None) -> str | None:
        assert target.ad is not None
        approvers = approvers_for(source=self.rules.approver_source, manager=self.resolver.manager_slack_id(
            target.entra), group_handle=self.rules.approvers_group, requester=requester, target=target.slack_id)
        confirm = self.rules.target_confirmation != TargetConfirmation.OFF and target.slack_id is not None
        now = self.clock()
        due = deadlines(now, self.rules.ttl)
        requester_display = self.notifier.name_of(requester)  # a Slack call: not while holding the intake lock
        with self.begin() as session:
            limits = self._check_limits(session, requester=requester, target_entra_id=target.entra.id,
                                        target_upn=target.entra.user_principal_name, now=now,
                                        correlation_id=correlation_id, source_key=source_key)
            req = None if limits is None or limits.decision.refused else store.requests.create_request(
                session, requester=requester, requester_display=requester_display,
                target_entra_id=target.entra.id, target_upn=target.entra.user_principal_name,
                target_sam=target.ad.sam, target_dn=target.ad.dn, target_guid=target.ad.object_guid or None,
                target_display=target.name,
                reason=reason, unlock=unlock, tap=tap, revoke_sessions=revoke_sessions,
                approvals_required=max(limits.decision.approvals, required_approvals(
                    protected=bool(protection), target_in_slack=target.slack_id is not None)),
                target_slack_id=target.slack_id, manager_slack_id=approvers.manager,
                approver_group=approvers.group_handle, protected=protection,
                confirmation="pending" if confirm else "off", delivery=self.rules.delivery.value,
                source_key=source_key, escalate_at=due.escalate_at,
                expires_at=due.expires_at, created_at=now,
                audit=AuditDraft(actor=requester, action=AuditAction.REQUESTED, correlation_id=correlation_id,
                                 detail={"reason": reason, "unlock": unlock, "tap": tap,
                                         "revoke_sessions": revoke_sessions, "protected": protection,
                                         "manager": approvers.manager, "approver_group": approvers.group_handle,
                                         "target_in_slack": target.slack_id is not None}),
            )
            if req is not None and limits is not None:
                self._audit_repeat(session, req, limits, correlation_id)
        if limits is not None:
            refused = self._tell_limits(limits, requester=requester, target_name=target.name,
                                        target_upn=target.entra.user_principal_name, req=req)
            if refused is not None:
                return refused
        if req is None:
            return None  # the same command, delivered again while the first delivery was being served
        try:
            posted_in = self._post_request(req, channel)
        except Exception:
            self._withdraw_unposted(req, correlation_id)
            raise
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

    def _withdraw_unposted(self, req: ResetRequest, correlation_id: str) -> None:
        """A request whose message Slack would not post has no thread: nobody sees it to decide, yet it would stay
        open until it expired, its target's Yes and any approval still acting on it. It is cancelled before the
        agent is told that nothing was changed, so that sentence is true, and the trail says why."""
        with self.begin() as session:
            store.requests.transition(
                session, request_id=req.id, expected=[RequestState.PENDING_APPROVAL], to=RequestState.CANCELLED,
                changes={"decided_at": self.clock()},
                audit=AuditDraft(actor="system", action=AuditAction.CANCELLED, correlation_id=correlation_id,
                                 detail={"reason": "request_not_posted"}))
        log.warning("request %s: its message could not be posted; withdrawn (%s)", req.id, correlation_id)

    def _post_request(self, req: ResetRequest, channel: str) -> str:
        """Post the request message where the agent typed, or in the requests channel when that was a DM (or the
        bot is not in that channel); record where, so every later message joins its thread."""
        candidates = [c for c in (channel, self.rules.requests_channel) if c and not c.startswith("D")]
        last_error: ResetbotError | None = None
        for where in dict.fromkeys(candidates):
            try:
                ts = self.notifier.post(where, messages.requests.request_text(req),
                                        blocks=self._request_blocks(req, approvals=[]))
            except ResetbotError as e:
                last_error = e
                continue
            with self.begin() as session:
                store.requests.attach_message(session, request_id=req.id, channel_id=where, thread_ts=ts)
            req.channel_id, req.thread_ts = where, ts
            return where
        raise last_error or ResetbotError(messages.requests.request_not_posted())
