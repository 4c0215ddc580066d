"""The abuse limits at ``/reset`` (issue: a helpdesk is where attackers phone in): one open request per target,
an agent's hourly number, a target reset again within the repeat window, the whole helpdesk's hourly number.

The counts are read, the rule (``bot.domain.limits.decide``) applied and its refusal or alerts audited in the very
transaction that makes the request, under the intake lock (``bot.store.limits.lock_intake``): two replicas at once
cannot both slip under a limit, and an alert that went out is known to every replica. Security is told after the
commit, so an alert never speaks of a request the database does not hold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot import messages, metrics, store
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.limits import RATE_WINDOW, Limit, LimitDecision, LimitFacts, decide
from bot.errors import ResetbotError
from bot.models import ResetRequest
from bot.services.request_views import RequestViews
from bot.store.shared import after_commit

log = logging.getLogger("bot.services.requests")

#: The audit actor of alerts no one person caused (the whole helpdesk's number).
HELPDESK = "system"


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """What the limits said about one ``/reset``: the decision, the facts it rested on, and the open request that
    refused it (if that was the reason)."""

    decision: LimitDecision
    facts: LimitFacts
    open_request: ResetRequest | None


class RequestLimits(RequestViews):
    """``_check_limits`` inside the request's transaction, ``_tell_limits`` after it."""

    clock: Callable[[], datetime]

    def _check_limits(self, session: Session, *, requester: str, target_entra_id: str, target_upn: str,
                      now: datetime, correlation_id: str, source_key: str | None) -> LimitCheck | None:
        """Lock intake, count, decide, and audit a refusal or the alerts it owes, in ``session``'s transaction.
        None when the same command (``source_key``) made its request meanwhile: a redelivery, nothing to say."""
        store.limits.lock_intake(session)
        if source_key is not None and store.requests.find_by_source(session, source_key=source_key) is not None:
            return None
        rules = self.rules.limits
        hour_ago = now - RATE_WINDOW
        open_request = store.limits.open_request_for(session, target_entra_id=target_entra_id)
        facts = LimitFacts(
            open_request=open_request.id if open_request is not None else None,
            agent_recent=store.limits.count_requests_since(session, since=hour_ago, requester=requester),
            agent_alerted=store.limits.alerted_since(session, action=AuditAction.AGENT_LIMIT_ALERTED,
                                                     actor=requester, since=hour_ago),
            reset_recently=rules.repeat_hours > 0 and store.limits.reset_since(
                session, target_entra_id=target_entra_id, since=now - rules.repeat_window),
            team_recent=store.limits.count_requests_since(session, since=hour_ago),
            team_alerted=store.limits.alerted_since(session, action=AuditAction.TEAM_LIMIT_ALERTED,
                                                    actor=HELPDESK, since=hour_ago),
        )
        decision = decide(facts, rules)
        if decision.refused is not None:
            store.audit.append_audit(session, at=now, draft=AuditDraft(
                actor=requester, action=AuditAction.REFUSED, correlation_id=correlation_id,
                detail={"stage": "request", "reason": decision.refused.value, "target": target_upn,
                        "open_request": facts.open_request, "agent_requests_last_hour": facts.agent_recent}))
        if Limit.AGENT_RATE in decision.alert:
            store.audit.append_audit(session, at=now, draft=AuditDraft(
                actor=requester, action=AuditAction.AGENT_LIMIT_ALERTED, correlation_id=correlation_id,
                detail={"requests_last_hour": facts.agent_recent, "limit": rules.agent_per_hour}))
        if Limit.TEAM_RATE in decision.alert:
            store.audit.append_audit(session, at=now, draft=AuditDraft(
                actor=HELPDESK, action=AuditAction.TEAM_LIMIT_ALERTED, correlation_id=correlation_id,
                detail={"requests_last_hour": facts.team_recent + 1, "limit": rules.team_per_hour}))
        applied = dict.fromkeys(([decision.refused] if decision.refused else []) + list(decision.alert))

        def count() -> None:
            for limit in applied:
                metrics.record_limit(limit)

        after_commit(session, count)
        return LimitCheck(decision, facts, open_request)

    def _audit_repeat(self, session: Session, req: ResetRequest, check: LimitCheck, correlation_id: str) -> None:
        """A repeat target's request is made: the alert it owes is recorded with it."""
        if Limit.REPEAT_TARGET in check.decision.alert:
            store.audit.append_audit(session, at=req.created_at, draft=AuditDraft(
                actor=req.requester, action=AuditAction.REPEAT_TARGET_ALERTED, request_id=req.id,
                correlation_id=correlation_id,
                detail={"repeat_hours": self.rules.limits.repeat_hours,
                        "approvals_required": req.approvals_required}))

    def _tell_limits(self, check: LimitCheck, *, requester: str, target_name: str, target_upn: str,
                     req: ResetRequest | None) -> str | None:
        """Security hears each alert; the sentence for the agent when a limit refused (None when it did not). A
        failed post is logged, never raised: the refusal or the request stands, and the audit row records it."""
        rules = self.rules.limits
        alerts: list[str] = []
        if Limit.AGENT_RATE in check.decision.alert:
            alerts.append(messages.limits.security_agent_rate(requester, check.facts.agent_recent,
                                                              rules.agent_per_hour))
        if Limit.TEAM_RATE in check.decision.alert:
            alerts.append(messages.limits.security_team_rate(check.facts.team_recent + 1, rules.team_per_hour))
        if Limit.REPEAT_TARGET in check.decision.alert and req is not None:
            alerts.append(messages.limits.security_repeat_target(req, rules.repeat_hours))
        if self.rules.security_channel:
            for alert in alerts:
                try:
                    self.notifier.post(self.rules.security_channel, alert)
                except ResetbotError as e:
                    log.warning("a limit's security alert could not be posted: %s", e)
        match check.decision.refused:
            case Limit.OPEN_REQUEST if check.open_request is not None:
                held = check.open_request
                link = self.notifier.permalink(held.channel_id, held.thread_ts) \
                    if held.channel_id and held.thread_ts else None
                return messages.limits.open_request(target_name, target_upn, held, link)
            case Limit.AGENT_RATE:
                return messages.limits.agent_rate(check.facts.agent_recent, rules.agent_per_hour)
        return None
