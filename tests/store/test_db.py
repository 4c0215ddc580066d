"""Engine configuration: what each backend must be set to for the compare-and-set to be correct."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import InternalError, OperationalError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.db import SQLITE_BEGIN_OPTION, SQLITE_CACHE_KIB, make_engine, make_session_factory
from bot.domain.audit import GENESIS_HASH
from bot.errors import ConfigError
from bot.schema import upgrade
from tests.store.helpers import draft

pytest_plugins = ("tests.store.dbfixtures",)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("mysql+pymysql://u@h/db", "not supported"),
        ("postgresql+psycopg2://u@h/db", "psycopg2"),
        ("not a url", "not valid"),
    ],
)
def test_unsupported_urls_are_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_engine(url)


@pytest.mark.parametrize("url", ["postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"])
def test_postgresql_urls_use_psycopg3(url: str) -> None:
    engine = make_engine(url)  # no connection is made until first use
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    assert engine.pool._pre_ping


def test_sqlite_connections_are_configured_for_concurrency(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_s=12.5)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 12500
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def _open_new_files(paths: list[str], barrier: Barrier, answers: Queue[str]) -> None:
    """In a process of its own: for each path, make an engine, wait until the other process is ready too, then
    make a table in that new file; put "ok" or the error's first line."""
    for path in paths:
        engine = make_engine(f"sqlite:///{path}", busy_timeout_s=10)
        barrier.wait()
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            answers.put("ok")
        except OperationalError as e:
            answers.put(str(e).splitlines()[0])
        engine.dispose()


@pytest.mark.process
def test_two_processes_opening_one_new_file_at_once_both_get_it(tmp_path: Path) -> None:
    """Two replicas (or two ``resetbot migrate``) starting on one new file: the one that loses the race to turn
    it into WAL waits for the other instead of failing with "database is locked" (SQLite does not call its busy
    handler for that pragma; about one start in seven failed so before). Forty new files, each opened by both at
    once. (Spawned, not forked: the test process may have threads.)"""
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(2), context.Queue()
    paths = [str(tmp_path / f"new{i}.db") for i in range(40)]
    procs = [context.Process(target=_open_new_files, args=(paths, barrier, answers)) for _ in range(2)]
    for p in procs:
        p.start()
    said = [answers.get(timeout=60) for _ in range(2 * len(paths))]
    for p in procs:
        p.join(timeout=30)
    assert [a for a in said if a != "ok"] == []


def test_every_sqlite_connection_keeps_a_small_page_cache(tmp_path: Path) -> None:
    """Each pooled connection keeps up to its cache_size in memory as the file grows (bot.db: SQLITE_CACHE_KIB);
    SQLite's default (2,000 KiB) made the process grow for its first thousand resets. Every connection, not only
    the first: the setting is per connection."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    reads = engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})  # both open at once: no write lock
    with reads.connect() as first, reads.connect() as second:
        for conn in (first, second):
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
    assert SQLITE_CACHE_KIB <= 512
    engine.dispose()


def test_sqlite_write_transactions_take_the_lock_at_begin(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE really is emitted: a second writer waits at BEGIN (here: times out), a reader does not."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_s=0.2)
    upgrade(engine)
    writer, reader = make_session_factory(engine), make_session_factory(engine, read_only=True)
    with writer.begin() as holding:
        holding.execute(text("SELECT 1"))  # nothing written yet, but the write lock is already held
        with pytest.raises(OperationalError, match="database is locked"), writer.begin() as second:
            second.execute(text("SELECT 1"))
        with reader.begin() as read:
            assert store.audit.get_audit_head(read) == (0, GENESIS_HASH)
    engine.dispose()


def test_read_only_sessions_cannot_write_on_postgresql(pg_engine: Engine) -> None:
    # (SQLite has no read-only transactions; there read-only means DEFERRED, tested above.)
    read_only = make_session_factory(pg_engine, read_only=True)
    with pytest.raises(InternalError, match="read-only transaction"), read_only.begin() as session:
        store.audit.append_audit(session, draft=draft())


def test_create_schema_is_idempotent_and_names_constraints(engine: Engine, factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        store.audit.append_audit(session, draft=draft())
    upgrade(engine)
    with factory.begin() as session:
        assert store.audit.get_audit_head(session)[0] == 1  # the head was not reset
        store.audit.ensure_audit_head(session)
        assert store.audit.get_audit_head(session)[0] == 1
    schema = inspect(engine)
    assert {"reset_request", "approval", "audit_event", "audit_head"} <= set(schema.get_table_names())
    assert schema.get_pk_constraint("reset_request")["name"] == "pk_reset_request"
    assert {i["name"] for i in schema.get_indexes("reset_request")} >= {
        "ix_reset_request_state_expires_at",
        "ix_reset_request_requester",
        "ix_reset_request_target_upn",
    }
    assert [fk["name"] for fk in schema.get_foreign_keys("approval")] == ["fk_approval_request_id_reset_request"]
    assert {c["name"] for c in schema.get_check_constraints("reset_request")} == {
        "ck_reset_request_approvals_required",
        "ck_reset_request_version",
    }


def test_a_missing_audit_head_is_recreated_on_first_append(engine: Engine, factory: sessionmaker[Session]) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    with factory.begin() as session:
        assert store.audit.append_audit(session, draft=draft()).seq == 1
        assert store.audit.get_audit_head(session)[0] == 1
