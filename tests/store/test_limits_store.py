"""What the abuse limits count, on SQLite and PostgreSQL: open and recent requests, recent resets, earlier alerts;
and the intake lock that makes "count, then insert" one decision when many replicas ask at once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.domain.audit import AuditAction
from bot.domain.lifecycle import RequestState as S
from bot.domain.lifecycle import deadlines
from tests.store.helpers import T0, draft, new_request, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)

TARGET = "00000000-0000-0000-0000-00000000beef"


def test_open_request_for_a_target_is_pending_approved_or_resetting_only(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    with factory.begin() as session:
        assert store.limits.open_request_for(session, target_entra_id=TARGET).id == req.id  # type: ignore[union-attr]
        assert store.limits.open_request_for(session, target_entra_id="someone-else") is None
        for was, to in ((S.PENDING_APPROVAL, S.APPROVED), (S.APPROVED, S.RESETTING)):
            store.requests.transition(session, request_id=req.id, expected={was}, to=to, audit=draft())
            assert store.limits.open_request_for(session, target_entra_id=TARGET) is not None
        store.requests.transition(session, request_id=req.id, expected={S.RESETTING}, to=S.SUCCEEDED,
                                  audit=draft(AuditAction.SUCCEEDED), now=T0 + timedelta(minutes=1))
        assert store.limits.open_request_for(session, target_entra_id=TARGET) is None
        assert store.limits.reset_since(session, target_entra_id=TARGET, since=T0)
        assert not store.limits.reset_since(session, target_entra_id=TARGET, since=T0 + timedelta(minutes=2))


def test_requests_are_counted_per_agent_and_for_everyone_since_a_moment(factory: sessionmaker[Session]) -> None:
    new_request(factory, created_at=T0 - timedelta(hours=2))
    new_request(factory, created_at=T0)
    new_request(factory, created_at=T0 + timedelta(minutes=5), requester="U0OTHER")
    with factory.begin() as session:
        assert store.limits.count_requests_since(session, since=T0 - timedelta(hours=1)) == 2
        assert store.limits.count_requests_since(session, since=T0 - timedelta(hours=1), requester="U0AGENT") == 1
        assert store.limits.count_requests_since(session, since=T0 - timedelta(hours=3), requester="U0AGENT") == 2


def test_an_alert_is_found_by_action_actor_and_time(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        store.audit.append_audit(session, draft=draft(AuditAction.AGENT_LIMIT_ALERTED, actor="U0AGENT"), at=T0)
    with factory.begin() as session:
        assert store.limits.alerted_since(session, action=AuditAction.AGENT_LIMIT_ALERTED, actor="U0AGENT", since=T0)
        assert not store.limits.alerted_since(session, action=AuditAction.AGENT_LIMIT_ALERTED, actor="U0OTHER",
                                              since=T0)
        assert not store.limits.alerted_since(session, action=AuditAction.AGENT_LIMIT_ALERTED, actor="U0AGENT",
                                              since=T0 + timedelta(seconds=1))


def test_under_the_intake_lock_twenty_simultaneous_intakes_make_exactly_the_limit(
        factory: sessionmaker[Session]) -> None:
    """Each worker counts, then inserts only while under five: without the lock, PostgreSQL lets several read
    "four" at once and all insert."""
    due = deadlines(T0)

    def intake(i: int) -> bool:
        with factory.begin() as session:
            store.limits.lock_intake(session)
            if store.limits.count_requests_since(session, since=T0 - timedelta(hours=1), requester="U0AGENT") >= 5:
                return False
            store.requests.create_request(
                session, requester="U0AGENT", target_entra_id=f"target-{i}", target_upn=f"t{i}@example.test",
                escalate_at=due.escalate_at, expires_at=due.expires_at, created_at=T0,
                audit=draft(AuditAction.REQUESTED, actor="U0AGENT"))
            return True

    assert run_concurrently(20, intake).count(True) == 5
    with factory.begin() as session:
        assert store.limits.count_requests_since(session, since=T0, requester="U0AGENT") == 5
