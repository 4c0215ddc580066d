"""Fixtures for the storage tests: the same test runs on a SQLite file and on PostgreSQL.

Loaded by each test module through ``pytest_plugins`` (the suite runs with ``--noconftest``). Each PostgreSQL
test gets its own fresh schema ``t_<random>`` (selected with ``search_path`` in the connection options) that is
dropped afterwards, so parallel runs against the one shared database never see each other's rows. PostgreSQL
being down is a failure, not a skip: the test command starts it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot.db import make_engine, make_session_factory
from tests.dbtemplate import migrate_pg, migrated_sqlite_file

PG_URL = os.environ.get("RESETBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _pg_conninfo() -> str:
    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        problem = str(e)
    pytest.fail(
        f"PostgreSQL is not reachable at {make_url(PG_URL).render_as_string()}: {problem}\n"
        "The storage tests need it (they are never skipped): run `bash lab/bootstrap.sh`, which starts it, or "
        "point RESETBOT_TEST_PG_URL at a server where the connecting role may create schemas.",
        pytrace=False,
    )


@contextmanager
def _pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, empty private schema (dropped afterwards)."""
    schema = f"t_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with _admin() as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _pg_engine() -> Iterator[Engine]:
    with _pg_schema_url() as url:
        engine = make_engine(url)
        try:
            migrate_pg(engine)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, empty database with the schema created: a SQLite file, or a private PostgreSQL schema (copied
    from one migrated once per run: ``tests/dbtemplate.py``)."""
    if request.param == "sqlite":
        sqlite_engine = make_engine(migrated_sqlite_file(tmp_path / "resetbot.db"))
        yield sqlite_engine
        sqlite_engine.dispose()
    else:
        yield from _pg_engine()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables at all): a SQLite file not yet made, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        with _pg_schema_url() as url:
            yield url


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh private PostgreSQL schema, for the few behaviours only PostgreSQL has."""
    yield from _pg_engine()
