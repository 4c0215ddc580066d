"""Fifty simultaneous clicks, two replicas: exactly one transition, on SQLite and on PostgreSQL. Replicas sweeping
the same due follow-ups at once: each check claimed by exactly one of them, and again once its lease lapses.

Every worker uses its own session (its own connection), as separate bot replicas or Slack deliveries would, and
all are released by a barrier at the same instant.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.domain.audit import AuditAction, verify_chain
from bot.domain.lifecycle import RequestState
from bot.models import FollowUp
from tests.store.helpers import T0, draft, new_request, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)

S = RequestState
PENDING = frozenset({S.PENDING_APPROVAL})


def _state_and_timeline(factory: sessionmaker[Session], request_id: str) -> tuple[RequestState, list[str]]:
    with factory.begin() as session:
        request = store.requests.get_request(session, request_id=request_id)
        assert request is not None
        events = store.audit.audit_for_request(session, request_id=request_id)
        assert verify_chain(store.audit.iter_audit(session), head=store.audit.get_audit_head(session)).ok
        return request.state, [e.action for e in events]


def test_fifty_identical_approve_clicks_make_one_transition(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)

    def click(i: int) -> bool:
        with factory.begin() as session:
            moved = store.requests.transition(
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
            moved = store.requests.transition(
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
            count = store.requests.add_approval(
                session, request_id=req.id, approver=people[i], at=T0, audit=draft(AuditAction.APPROVAL_ADDED)
            ).total
            if count < req.approvals_required:
                return False
            moved = store.requests.transition(session, request_id=req.id, expected=PENDING, to=S.APPROVED,
                                              audit=draft())
            return moved is not None

    assert run_concurrently(len(people), click).count(True) == 1
    state, actions = _state_and_timeline(factory, req.id)
    assert state is S.APPROVED
    assert Counter(actions) == {"requested": 1, "approval_added": 2, "approved": 1}
    with factory.begin() as session:
        assert store.requests.count_approvals(session, request_id=req.id) == 2


def test_expiry_racing_approval_has_one_outcome(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    targets = [S.EXPIRED if i % 3 == 0 else S.APPROVED for i in range(30)]

    def act(i: int) -> bool:
        with factory.begin() as session:
            moved = store.requests.transition(session, request_id=req.id, expected=PENDING, to=targets[i],
                                              audit=draft())
            return moved is not None

    assert run_concurrently(len(targets), act).count(True) == 1
    state, actions = _state_and_timeline(factory, req.id)
    assert state in {S.EXPIRED, S.APPROVED}
    assert len(actions) == 2


def test_replicas_escalate_once(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)

    def escalate(_: int) -> bool:
        with factory.begin() as session:
            due = store.requests.due_for_escalation(session, now=req.escalate_at)
            return any(
                store.requests.mark_escalated(session, request_id=r.id, at=req.escalate_at,
                                              audit=draft(AuditAction.ESCALATED))
                is not None
                for r in due
            )

    assert run_concurrently(10, escalate).count(True) == 1
    _, actions = _state_and_timeline(factory, req.id)
    assert actions == ["requested", "escalated"]


def _sweep(factory: sessionmaker[Session], claim: str, now: timedelta, seen: list[int] | None = None) -> list[int]:
    """One replica's sweep, as the follow-up service makes it: read what is due, claim each, in one transaction.
    With ``seen`` the read is the one every replica made before any claim (all saw the checks pending): only
    the claim's compare-and-set can then keep a check from running twice."""
    at = T0 + now
    with factory.begin() as session:
        due = store.followups.due_followups(session, now=at) if seen is None else seen
        return [i for i in due
                if store.followups.claim_followup(session, followup_id=i, claim=claim, now=at,
                                                  lease_until=at + timedelta(minutes=1)) is not None]


def test_replicas_sweeping_together_claim_each_followup_once_and_a_lapsed_lease_once_more(
        factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    with factory.begin() as session:
        store.followups.add_followups(session, rows=[
            FollowUp(request_id=req.id, kind=kind, step=step, due_at=T0, reset_at=T0)
            for kind, step in (("landed", 0), ("replaced", 0), ("replaced", 1))])
        ids = sorted(f.id for f in store.followups.followups_for(session, request_id=req.id) if f.id is not None)
    replicas = 12

    claimed = run_concurrently(replicas, lambda i: _sweep(factory, f"replica{i:02}", timedelta(seconds=1), ids))
    assert sorted(i for got in claimed for i in got) == ids, "every due check claimed, none twice"
    winner = {i: f"replica{n:02}" for n, got in enumerate(claimed) for i in got}
    with factory.begin() as session:
        rows = store.followups.followups_for(session, request_id=req.id)
    assert {(f.id, f.state, f.claim, f.attempts) for f in rows} == {(i, "running", winner[i], 1) for i in ids}
    assert run_concurrently(replicas, lambda i: _sweep(factory, f"late{i:02}", timedelta(seconds=30))) == \
        [[]] * replicas, "nothing is claimable while the leases hold"

    # The winners died: their leases lapse, and the checks are taken over once each.
    retaken = run_concurrently(replicas, lambda i: _sweep(factory, f"second{i:02}", timedelta(minutes=2),
                                                          ids if i % 2 else None))
    assert sorted(i for got in retaken for i in got) == ids
    heir = {i: f"second{n:02}" for n, got in enumerate(retaken) for i in got}
    with factory.begin() as session:
        assert not store.followups.finish_followup(session, followup_id=ids[0], claim=winner[ids[0]], outcome="landed",
                                                   seen=None,
                                                   now=T0), "the first claimant lost the check with its lease"
        assert store.followups.finish_followup(session, followup_id=ids[0], claim=heir[ids[0]], outcome="landed",
                                               seen=None,
                                               now=T0)
        rows = store.followups.followups_for(session, request_id=req.id)
    assert {(f.id, f.claim, f.attempts) for f in rows} == {(i, heir[i], 2) for i in ids}
    assert [f.state for f in rows if f.id == ids[0]] == ["done"]
