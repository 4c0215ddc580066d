"""Health's claims on both databases: a slot and a transition seq go to exactly one caller, however many race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.models import HealthTransition

pytest_plugins = ("tests.store.dbfixtures",)

T0 = datetime(2031, 1, 1, 12, tzinfo=UTC)


def claim(factory: sessionmaker[Session], kind: str, slot: int, runner: str) -> bool:
    with factory.begin() as session:
        return store.health.claim_health_slot(session, kind=kind, slot=slot, runner=runner, at=T0)


def test_each_slot_is_claimed_once_among_racing_replicas(factory: sessionmaker[Session]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(lambda i: claim(factory, "round", 7, f"r{i}"), range(16)))
    assert won.count(True) == 1
    assert claim(factory, "round", 8, "r0") and claim(factory, "summary", 7, "r0"), "other slots and kinds are free"
    assert not claim(factory, "summary", 7, "r1")
    with factory.begin() as session:
        assert store.health.count_health_slots(session, kind="round") == 2


def test_a_transition_seq_goes_in_once_and_results_give_each_checks_latest(factory: sessionmaker[Session]) -> None:
    def add(seq: int, to: str) -> bool:
        with factory.begin() as session:
            return store.health.add_health_transition(session, transition=HealthTransition(
                seq=seq, round_slot=seq, at=T0, from_state="healthy", to_state=to, failing="[]", changed="{}"))

    assert add(1, "degraded") and not add(1, "healthy")
    with factory.begin() as session:
        last = store.health.last_health_transition(session)
        assert last is not None and last.to_state == "degraded"
        store.health.add_health_results(session, round_slot=2, results={"ldap": (False, "down"), "graph_read": (True,
                                                                                                                "")},
                                        at=T0)
        store.health.add_health_results(session, round_slot=3, results={"ldap": (True, "up")},
                                        at=T0 + timedelta(hours=1))
        store.health.add_health_results(session, round_slot=1, results={"ldap": (False, "late")},
                                        at=T0 + timedelta(hours=2))
    with factory.begin() as session:
        latest = store.health.latest_health_results(session)
        assert {k: (v.ok, v.detail) for k, v in latest.items()} == {"ldap": (True, "up"), "graph_read": (True, "")}
        assert store.health.health_failures_since(session, since=T0) == {"ldap": (3, 2), "graph_read": (1, 0)}
        assert store.health.prune_health(session, before=T0 + timedelta(minutes=30)) == 2
