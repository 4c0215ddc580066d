"""What people see of a request: ``/reset-status`` and App Home, and what every part of ``RequestService`` shares
to show a change (the request message redrawn, the thread told, App Homes refreshed), plus loading a request and
writing an audit event. The base of ``RequestIntake`` and ``RequestDecisions``; ``bot.services.requests`` puts them
together.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot import messages, store
from bot.clients.slack_notify import Notifier
from bot.db import SessionFactory, Transactions
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.groups import MEMBERS_FOR_A_DECISION_S, MEMBERS_FOR_A_REQUEST_S
from bot.domain.health_state import HealthReport
from bot.domain.lifecycle import RequestState
from bot.domain.parse import parse_target
from bot.domain.rules import Refusal
from bot.domain.verification import VerifyState, usable_methods
from bot.errors import ResetbotError
from bot.models import ResetRequest, normalize_request_id
from bot.services.debounce import Debounce
from bot.services.resolve import ResolveFailure, ResolveProblem, TargetResolver

if TYPE_CHECKING:
    from bot.services.requests import RequestRules

#: Logged under the service's name, as before the service was split in modules: operators' log filters name it.
log = logging.getLogger("bot.services.requests")


class RequestViews(Transactions):
    """Looking at requests, and the helpers the other parts of ``RequestService`` share."""

    # RequestService's fields these methods read (declared here for the type checker; the dataclass sets them).
    begin: SessionFactory
    reads: SessionFactory | None
    notifier: Notifier
    resolver: TargetResolver
    rules: RequestRules
    health_report: Callable[[], HealthReport] | None
    home_refreshes: Debounce

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
            with self.reading() as session:
                mine = store.requests.find_requests(session, requester=actor, limit=10)
            return messages.status.request_list("Your recent requests", mine)
        request_id = normalize_request_id(text)
        if request_id:
            with self.reading() as session:
                req = store.requests.get_request(session, request_id=request_id)
                events = store.audit.audit_for_request(session, request_id=request_id) if req else []
            return messages.status.timeline(req, events) if req else messages.requests.request_not_found(text)
        ref = parse_target(text)
        if ref is None:
            return messages.status.status_usage()
        found = self.resolver.resolve(ref)
        if isinstance(found, ResolveProblem):
            return self._resolve_sentence(found)
        with self.reading() as session:
            reqs = store.requests.find_requests(session, target_upn=found.entra.user_principal_name, limit=10)
        if not reqs:
            return messages.status.no_requests_for(found.name)
        return messages.status.request_list(messages.status.requests_for(found.name), reqs)

    def _may_look_up(self, actor: str) -> bool:
        groups = [g for g in (self.rules.agents_group, self.rules.approvers_group) if g]
        return any(self._is_member(actor, g, max_age=MEMBERS_FOR_A_REQUEST_S) for g in groups)

    def _is_member(self, user: str, group: str, *, max_age: float) -> bool:
        """``user`` is in ``group`` by a list at most ``max_age`` old; a remembered list may say yes, never no (a
        no is read again now): someone just added is not refused for the seconds a list is remembered."""
        return user in self.notifier.group_members(group, max_age=max_age) or (
            max_age > MEMBERS_FOR_A_DECISION_S
            and user in self.notifier.group_members(group, max_age=MEMBERS_FOR_A_DECISION_S))

    def _own_status(self, *, actor: str, text: str, correlation_id: str) -> str:
        me = self.resolver.entra_id_of(actor)
        request_id = normalize_request_id(text) if text else None
        if me is not None and not text:
            with self.reading() as session:
                mine = store.requests.find_requests(session, target_entra_id=me, limit=10)
            return messages.status.request_list(messages.status.about_you(), mine)
        if me is not None and request_id:
            with self.reading() as session:
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

    def _resolve_sentence(self, problem: ResolveProblem) -> str:
        match problem.failure:
            case ResolveFailure.UNKNOWN:
                return messages.requests.unknown_user(problem.text)
            case ResolveFailure.AMBIGUOUS:
                return messages.requests.ambiguous_user(problem.text, problem.candidates)
            case ResolveFailure.SLACK_USER_WITHOUT_EMAIL:
                return messages.requests.not_in_directory_slack_user()
            case ResolveFailure.SLACK_USER_NOT_MATCHED:
                return messages.requests.slack_user_not_matched(problem.text)
            case ResolveFailure.NOT_IN_ENTRA:
                return messages.requests.in_ad_not_in_entra(problem.text, *problem.candidates[0])
            case ResolveFailure.NOT_EXACT:
                return messages.requests.only_a_near_match(problem.text, *problem.candidates[0])

    def home(self, *, user: str, health: HealthReport | None = None, only_if_changed: bool = False) -> None:
        """Publish ``user``'s App Home; ``only_if_changed`` for a refresh that someone else's action caused."""
        with self.reading() as session:
            # Every pending request (up to a bound no helpdesk reaches), so App Home's count of the rest is right.
            pending = store.requests.find_requests(session, states={RequestState.PENDING_APPROVAL}, limit=1000)
            mine = store.requests.find_requests(session, requester=user, limit=messages.home.HOME_LIST_SHOWN)
            mine_total = store.requests.count_requests(session, requester=user)
        mine_pending = [r for r in pending if self._may_approve(r, user)]
        self.notifier.publish_home(user, messages.home.home_view(pending_for_me=mine_pending, mine=mine,
                                                                health=health, mine_total=mine_total),
                                   only_if_changed=only_if_changed)

    def _may_approve(self, req: ResetRequest, user: str) -> bool:
        if user in (req.requester, req.target_slack_id):
            return False
        return user == req.manager_slack_id or (
            bool(req.approver_group) and user in self.notifier.group_members(req.approver_group or ""))

    # --- helpers -------------------------------------------------------------------------------------------------

    def _load(self, request_id: str) -> tuple[ResetRequest | None, list[str]]:
        canonical = normalize_request_id(request_id) or request_id
        with self.reading() as session:
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
                                 blocks=self._request_blocks(req, approvals=approvals, decided_by=decided_by,
                                                             note=note))

    def _request_blocks(self, req: ResetRequest, *, approvals: Sequence[str], decided_by: str | None = None,
                        note: str | None = None) -> messages.format.Blocks:
        """The request message with its caller line and, while it may be verified, the agent's buttons."""
        shown = self.rules.verify_required or req.verification != VerifyState.NONE or bool(self.rules.verify_methods)
        methods = usable_methods(self.rules.verify_methods, protected=bool(req.protected),
                                 target_in_slack=req.target_slack_id is not None)
        return messages.requests.request_blocks(
            req, approvals=approvals, group_id=self._group_id(req), decided_by=decided_by, note=note,
            caller_line=messages.verification.state_line(req, required=self.rules.verify_required) if shown else None,
            verify_actions=messages.verification.verify_buttons(req, methods))

    def _announce(self, req: ResetRequest, text: str, *, decided_by: str | None, note: str | None = None,
                  approvals: Sequence[str] = ()) -> None:
        """After a state change: redraw the request message, say it in the thread, refresh App Homes."""
        self._redraw(req, approvals=approvals, decided_by=decided_by, note=note)
        self._thread(req, text)
        self._refresh_homes(req)

    def _refresh_homes(self, req: ResetRequest) -> None:
        """Best effort, and soon rather than now: a stale App Home must never fail or slow the action that changed
        it, and a burst's changes for one person are drawn once (``home_refreshes``)."""
        for user in dict.fromkeys(u for u in (req.requester, req.manager_slack_id) if u):
            self.home_refreshes.ask(f"home:{user}", functools.partial(self._refresh_home, user))

    def _refresh_home(self, user: str) -> None:
        """Published only if the person's view changed (the client remembers what each was last shown), with the
        health section they saw when they opened it: a refresh without it would change every view, and hide
        writeback's health."""
        health = None
        if self.health_report is not None:
            try:
                health = self.health_report()
            except Exception as e:  # the health section is worth less than the refresh
                log.warning("App Home refresh without writeback health: %s", type(e).__name__)
        try:
            self.home(user=user, health=health, only_if_changed=True)
        except ResetbotError as e:  # one line, not a traceback per request of a burst
            log.warning("could not refresh the App Home of %s: %s", user, e)
