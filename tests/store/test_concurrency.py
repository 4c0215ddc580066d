"""Fifty simultaneous clicks, two replicas: exactly one transition, on SQLite and on PostgreSQL.

Every worker uses its own session (its own connection), as separate bot replicas or Slack deliveries would, and
all are released by a barrier at the same instant.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.services.audit import AuditAction, verify_chain
from bot.services.lifecycle import RequestState
from tests.store.helpers import T0, draft, new_request, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)

S = RequestState
PENDING = frozenset({S.PENDING_APPROVAL})


def _state_and_timeline(factory: sessionmaker[Session], request_id: str) -> tuple[RequestState, list[str]]:
    with factory.begin() as session:
        request = store.get_request(session, request_id=request_id)
        assert request is not None
        events = store.audit_for_request(session, request_id=request_id)
        assert verify_chain(store.iter_audit(session), head=store.get_audit_head(session)).ok
        return request.state, [e.action for e in events]


def test_fifty_identical_approve_clicks_make_one_transition(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)

    def click(i: int) -> bool:
        with factory.begin() as session:
            moved = store.transition(
                session, request_id=req.id, expected=PENDING, to=S.APPROVED, audit=draft(actor=f"U{i:03}")
            )
            return moved is not None

    wins = run_concurrently(50, click)
    assert wins.count(True) == 1
    state, actions = _state_and_timeline(factory, req.id)
    assert state is S.APPROVED
    assert actions == ["requested", "approved"]


def test_approve_and_cancel_racing_make_one_transition(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    targets = [S.APPROVED if i % 2 else S.CANCELLED for i in range(40)]

    def click(i: int) -> RequestState | None:
        action = AuditAction.APPROVED if targets[i] is S.APPROVED else AuditAction.CANCELLED
        with factory.begin() as session:
            moved = store.transition(
                session, request_id=req.id, expected=PENDING, to=targets[i], audit=draft(action, f"U{i:03}")
            )
            return None if moved is None else moved.state

    winners = [w for w in run_concurrently(40, click) if w is not None]
    assert len(winners) == 1
    state, actions = _state_and_timeline(factory, req.id)
    assert state is winners[0]
    assert actions == ["requested", winners[0].value]


def test_two_approvers_clicking_together_approve_exactly_once(factory: sessionmaker[Session]) -> None:
    """Without the row lock in add_approval, each approver could count only itself and neither would win."""
    req = new_request(factory, approvals_required=2)
    people = ["U0ALICE", "U0BOB"] * 6

    def click(i: int) -> bool:
        with factory.begin() as session:
            count = store.add_approval(
                session, request_id=req.id, approver=people[i], at=T0, audit=draft(AuditAction.APPROVAL_ADDED)
            ).total
            if count < req.approvals_required:
                return False
            moved = store.transition(session, request_id=req.id, expected=PENDING, to=S.APPROVED, audit=draft())
            return moved is not None

    assert run_concurrently(len(people), click).count(True) == 1
    state, actions = _state_and_timeline(factory, req.id)
    assert state is S.APPROVED
    assert Counter(actions) == {"requested": 1, "approval_added": 2, "approved": 1}
    with factory.begin() as session:
        assert store.count_approvals(session, request_id=req.id) == 2


def test_expiry_racing_approval_has_one_outcome(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    targets = [S.EXPIRED if i % 3 == 0 else S.APPROVED for i in range(30)]

    def act(i: int) -> bool:
        with factory.begin() as session:
            moved = store.transition(session, request_id=req.id, expected=PENDING, to=targets[i], audit=draft())
            return moved is not None

    assert run_concurrently(len(targets), act).count(True) == 1
    state, actions = _state_and_timeline(factory, req.id)
    assert state in {S.EXPIRED, S.APPROVED}
    assert len(actions) == 2


def test_replicas_escalate_once(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)

    def escalate(_: int) -> bool:
        with factory.begin() as session:
            due = store.due_for_escalation(session, now=req.escalate_at)
            return any(
                store.mark_escalated(session, request_id=r.id, at=req.escalate_at, audit=draft(AuditAction.ESCALATED))
                is not None
                for r in due
            )

    assert run_concurrently(10, escalate).count(True) == 1
    _, actions = _state_and_timeline(factory, req.id)
    assert actions == ["requested", "escalated"]
