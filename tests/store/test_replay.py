"""Replay refusal's memory of signatures, on SQLite and PostgreSQL: first sight wins once, across replicas."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot.db import SessionFactory
from bot.services.replay import REMEMBER_FOR, SIGNATURE_WINDOW, WORK_MAY_WAIT, ReplayGuard

pytest_plugins = ("tests.store.dbfixtures",)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SIG = "v0=" + "a" * 64


def test_a_signature_is_served_once(factory: sessionmaker[Session]) -> None:
    guard = ReplayGuard(factory.begin, clock=lambda: T0)
    assert guard.first_sight(SIG)
    assert not guard.first_sight(SIG)
    assert guard.first_sight("v0=" + "b" * 64)


def test_two_replicas_racing_with_the_same_request_serve_it_once(factory: sessionmaker[Session]) -> None:
    replicas = [ReplayGuard(factory.begin, clock=lambda: T0) for _ in range(8)]
    results: list[bool] = []
    start = threading.Barrier(len(replicas))

    def serve(guard: ReplayGuard) -> None:
        start.wait()
        results.append(guard.first_sight(SIG))

    threads = [threading.Thread(target=serve, args=(g,)) for g in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_signatures_older_than_the_window_are_forgotten(factory: sessionmaker[Session]) -> None:
    now = [T0]
    guard = ReplayGuard(factory.begin, clock=lambda: now[0])
    assert guard.first_sight(SIG)
    now[0] = T0 + REMEMBER_FOR - timedelta(seconds=1)
    assert not guard.first_sight(SIG), "still inside the window: a replay"
    now[0] = T0 + REMEMBER_FOR + timedelta(minutes=2)
    assert guard.first_sight("v0=" + "c" * 64)  # prunes what is older than the window
    assert guard.first_sight(SIG), "forgotten (bolt refuses so old a timestamp anyway)"


def test_a_copy_checked_after_the_longest_wait_in_the_work_pool_is_still_refused(
        factory: sessionmaker[Session]) -> None:
    """The check across replicas runs when the work starts, not at the ack: a copy sent to another replica at the
    window's edge, behind a full work lane, is checked up to ``WORK_MAY_WAIT`` later. Before: signatures were kept
    ten minutes, another request on that replica pruned the original's row meanwhile, and the copy ran again."""
    now = [T0]
    here = ReplayGuard(factory.begin, clock=lambda: now[0])
    there = ReplayGuard(factory.begin, clock=lambda: now[0])
    assert here.first_sight(SIG)
    now[0] = T0 + SIGNATURE_WINDOW + timedelta(minutes=7)
    assert there.first_sight("v0=" + "e" * 64)  # some other request there, which prunes old signatures
    now[0] = T0 + SIGNATURE_WINDOW + WORK_MAY_WAIT - timedelta(seconds=1)
    assert not there.first_sight(SIG), "the copy, checked as late as the pool lets work wait: still a replay"


def test_this_process_remembers_what_it_served_for_the_window_without_the_database() -> None:
    """The ack path's check (``new_here``): memory only, so it is given no database at all here."""
    now = [T0]
    guard = ReplayGuard(cast(SessionFactory, None), clock=lambda: now[0])
    assert guard.new_here(SIG)
    assert not guard.new_here(SIG)
    now[0] = T0 + REMEMBER_FOR - timedelta(seconds=1)
    assert not guard.new_here(SIG), "still inside the window: a replay"
    now[0] = T0 + REMEMBER_FOR + timedelta(minutes=2)
    assert guard.new_here("v0=" + "d" * 64)
    assert guard.new_here(SIG), "forgotten with the database's memory (bolt refuses so old a timestamp anyway)"
