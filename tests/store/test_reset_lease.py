"""The lease on a ``resetting`` request, on SQLite and PostgreSQL: a live reset that renews it is never found
stuck however long it runs; a lapsed one is, and is taken by exactly one of several replicas recovering at once;
a request without a lease (an older release's) is judged by its age, as before."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.domain.lifecycle import RequestState
from tests.store.helpers import T0, draft, new_request, run_concurrently

pytest_plugins = ("tests.store.dbfixtures",)

S = RequestState
LEASE = timedelta(seconds=60)
STALE = timedelta(seconds=130)


def _resetting(factory: sessionmaker[Session], *, owner: str | None = "live") -> str:
    req = new_request(factory)
    with factory.begin() as session:
        assert store.requests.transition(session, request_id=req.id, expected={S.PENDING_APPROVAL}, to=S.APPROVED,
                                         audit=draft(), now=T0)
        assert store.requests.transition(session, request_id=req.id, expected={S.APPROVED}, to=S.RESETTING,
                                         audit=draft(), now=T0,
                                         changes={"lease_owner": owner, "lease_until": T0 + LEASE if owner else None})
    return req.id


def _stuck(factory: sessionmaker[Session], now: timedelta) -> list[str]:
    with factory.begin() as session:
        return [r.id for r in store.requests.stuck_requests(session, state=S.RESETTING, since_before=T0 + now - STALE,
                                                            now=T0 + now)]


def test_a_renewed_lease_is_never_stuck_and_a_lapsed_one_is(factory: sessionmaker[Session]) -> None:
    request_id = _resetting(factory)
    assert _stuck(factory, timedelta(seconds=30)) == []
    for beat in range(1, 20):  # a reset that has run for ten minutes and more, still renewing
        with factory.begin() as session:
            assert store.requests.renew_lease(session, request_id=request_id, owner="live",
                                              until=T0 + beat * timedelta(seconds=30) + LEASE)
        assert _stuck(factory, beat * timedelta(seconds=30) + timedelta(seconds=1)) == []
    assert _stuck(factory, 19 * timedelta(seconds=30) + LEASE + timedelta(seconds=1)) == [request_id]
    with factory.begin() as session:
        assert not store.requests.renew_lease(session, request_id=request_id, owner="someone-else", until=T0)


def test_without_a_lease_the_age_decides(factory: sessionmaker[Session]) -> None:
    request_id = _resetting(factory, owner=None)
    assert _stuck(factory, timedelta(seconds=100)) == []
    assert _stuck(factory, STALE + timedelta(seconds=1)) == [request_id]


def test_replicas_recovering_at_once_take_a_lapsed_lease_once(factory: sessionmaker[Session]) -> None:
    request_id = _resetting(factory)
    now = T0 + LEASE + timedelta(seconds=1)

    def recover(i: int) -> bool:
        with factory.begin() as session:
            return store.requests.claim_lease(session, request_id=request_id, owner=f"replica-{i}", now=now,
                                              until=now + LEASE, since_before=now - STALE) is not None

    assert run_concurrently(10, recover).count(True) == 1
    with factory.begin() as session:
        assert store.requests.claim_lease(session, request_id=request_id, owner="late", now=now, until=now + LEASE,
                                          since_before=now - STALE) is None, "held by the winner now"
        assert not store.requests.renew_lease(session, request_id=request_id, owner="live", until=now + LEASE), \
            "the stopped holder's lease is gone"
        req = store.requests.get_request(session, request_id=request_id)
        assert req is not None and req.updated_at == T0, "recovery's give-up bound still counts from the start"
