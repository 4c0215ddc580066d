"""The caller-verification compare-and-set on SQLite and PostgreSQL: one outcome per attempt, whatever races it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.domain.audit import AuditAction
from bot.domain.lifecycle import RequestState
from tests.store.helpers import T0, draft, new_request, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)


def test_a_wrong_try_counts_once_when_two_submissions_race(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    with factory.begin() as session:
        started = store.requests.set_verification(
            session, request_id=req.id, expected={"none"}, at=T0,
            changes={"verification": "pending", "verify_method": "slack-code", "verify_sealed": "sealed-1"},
            audit=draft(AuditAction.VERIFY_STARTED))
    assert started is not None and started.verification == "pending"

    def submit(_: int) -> bool:
        with factory.begin() as session:
            return store.requests.set_verification(
                session, request_id=req.id, expected={"pending"}, changes={"verify_tries": 1},
                match={"verify_sealed": "sealed-1", "verify_tries": 0},
                audit=draft(AuditAction.VERIFY_CODE_WRONG)) is not None

    assert sorted(run_concurrently(4, submit)) == [False, False, False, True]
    with factory.begin() as session:
        got = store.requests.get_request(session, request_id=req.id)
        assert got is not None and got.verify_tries == 1
        actions = [e.action for e in store.audit.audit_for_request(session, request_id=req.id)]
    assert actions.count("verify_code_wrong") == 1


def test_a_superseded_attempt_records_nothing(factory: sessionmaker[Session]) -> None:
    """A Duo push's outcome arriving after the agent started another attempt matches no row (its txid is gone)."""
    req = new_request(factory)
    with factory.begin() as session:
        store.requests.set_verification(session, request_id=req.id, expected={"none"}, audit=None,
                                        changes={"verification": "pending", "verify_txid": "tx-1"})
        store.requests.set_verification(session, request_id=req.id, expected={"pending"}, audit=None,
                                        changes={"verify_txid": None, "verify_sealed": "code"})
    with factory.begin() as session:
        late = store.requests.set_verification(session, request_id=req.id, expected={"pending"},
                                               match={"verify_txid": "tx-1"}, changes={"verification": "verified"},
                                               audit=draft(AuditAction.CALLER_VERIFIED))
        assert late is None
        assert [e.action for e in store.audit.audit_for_request(session, request_id=req.id)] == ["requested"]


def test_no_verification_changes_on_a_request_no_longer_pending(factory: sessionmaker[Session]) -> None:
    req = new_request(factory)
    with factory.begin() as session:
        store.requests.transition(session, request_id=req.id, expected={req.state}, to=RequestState.CANCELLED,
                                  audit=draft(AuditAction.CANCELLED))
        assert store.requests.set_verification(session, request_id=req.id, expected={"none"}, audit=None,
                                               changes={"verification": "pending"}) is None


def test_stale_verifications_are_those_under_way_past_their_deadline(factory: sessionmaker[Session]) -> None:
    late, fresh, done = new_request(factory), new_request(factory), new_request(factory)
    with factory.begin() as session:
        for req, state, until in ((late, "pending", T0), (fresh, "pending", T0 + timedelta(minutes=10)),
                                  (done, "verified", T0)):
            store.requests.set_verification(session, request_id=req.id, expected={"none"}, audit=None,
                                            changes={"verification": state, "verify_expires_at": until})
    with factory.begin() as session:
        stale = store.requests.stale_verifications(session, before=T0 + timedelta(minutes=1))
    assert [r.id for r in stale] == [late.id]


@pytest.mark.parametrize("to", [RequestState.CANCELLED, RequestState.DENIED, RequestState.EXPIRED])
def test_a_closed_request_keeps_no_sealed_code(factory: sessionmaker[Session], to: RequestState) -> None:
    """A code sent to the target and never entered must not outlive the request: the move to a final state clears
    it in the same UPDATE, whoever makes the move (a security fix: it used to stay in the row for good)."""
    req = new_request(factory)
    with factory.begin() as session:
        store.requests.set_verification(session, request_id=req.id, expected={"none"}, audit=None,
                                        changes={"verification": "pending", "verify_method": "slack-code",
                                                 "verify_sealed": "sealed-code", "verify_expires_at": T0})
    with factory.begin() as session:
        done = store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                         to=to, audit=draft(AuditAction(to.value)))
        assert done is not None and done.verify_sealed is None
    with factory.begin() as session:
        got = store.requests.get_request(session, request_id=req.id)
        assert got is not None and got.verify_sealed is None and got.verify_expires_at is None
