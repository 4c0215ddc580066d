"""Engine configuration: what each backend must be set to for the compare-and-set to be correct."""

from __future__ import annotations

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
