"""Engines and sessions for the two supported databases: a SQLite file (default) and PostgreSQL (replicas).

Correctness of the request state machine rests on the database doing compare-and-set for us, so each backend is
configured for it here, once:

- SQLite: WAL (readers do not block the writer), a busy timeout (writers queue instead of failing at once),
  foreign keys on, and every transaction started with ``BEGIN IMMEDIATE``. The last point needs SQLAlchemy's
  documented pysqlite recipe (``isolation_level = None`` on connect + emitting BEGIN ourselves in the ``begin``
  event): Python 3.11's sqlite3 would otherwise start a transaction only at the first INSERT/UPDATE, so a
  read-then-write transaction would be two snapshots, and a deferred transaction that reads before it writes can
  fail with SQLITE_BUSY instead of waiting. With IMMEDIATE the write lock is taken at BEGIN, so write
  transactions are simply serialised.
- PostgreSQL (psycopg 3): the default READ COMMITTED is what the CAS wants — a conditional UPDATE that waited for
  a competing one re-checks its WHERE against the committed row, so exactly one of them matches. Pre-ping drops
  connections a restart or failover killed.

The session factory is a ``sessionmaker``: thread-safe, one new ``Session`` per unit of work. Use
``with factory.begin() as session:`` so the transaction commits (or rolls back) as soon as the block ends —
a transition holds row locks (and the audit head) until then, so never wait on Slack or Graph inside one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from bot.errors import ConfigError

#: Execution option read by the SQLite ``begin`` hook; ``make_session_factory(read_only=True)`` sets DEFERRED.
SQLITE_BEGIN_OPTION = "resetbot_sqlite_begin"
_SQLITE_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})

DEFAULT_BUSY_TIMEOUT_S = 30.0

#: Each SQLite connection's page cache, in KiB (SQLite's default is 2,000). The pool keeps five connections
#: (SQLAlchemy's default; ten more while the work pool is busy) and each fills its cache up to the cap as the file
#: grows, which is memory the process keeps growing into over its first thousand resets (issue 13, part 7;
#: ``bench/soak.py``). The
#: cache buys little here: in WAL mode a connection drops its cache whenever another connection has written,
#: which in this bot is nearly every transaction, and the file's pages stay in the kernel's page cache anyway.
SQLITE_CACHE_KIB = 256


#: ``sessionmaker.begin``: a transaction that commits when the block ends (objects stay readable after it,
#: see ``make_session_factory``). Services take this, never an engine.
SessionFactory = Callable[[], AbstractContextManager[Session]]


class Transactions:
    """What every service holds: ``begin`` for work that writes, ``reads`` for work that only looks.

    On SQLite a ``begin`` transaction takes the one write lock at BEGIN (IMMEDIATE, see above), so a status, an App
    Home or a sweep's "what is due?" that went through it would queue behind every reset and request being written,
    and hold up every writer while it read. ``reading()`` begins DEFERRED instead (READ ONLY on PostgreSQL), from
    ``make_session_factory(read_only=True)``. The discipline: a read whose answer decides a write (a limit counted
    before a request is created, a claim, a state checked before a transition) belongs in the write transaction
    itself; only a block that writes nothing and decides no write in it uses ``reading()``. ``reads`` is None in
    tests that build a service from one factory: ``reading()`` then uses ``begin``.
    """

    begin: SessionFactory
    reads: SessionFactory | None

    def reading(self) -> AbstractContextManager[Session]:
        """A transaction that only reads: DEFERRED on SQLite (never queues behind writers), READ ONLY on
        PostgreSQL (a write through it fails instead of slipping past the CAS discipline)."""
        return (self.reads or self.begin)()


def _normalise_url(url: str | URL) -> URL:
    """Parse the URL; ``postgres://`` and ``postgresql://`` mean psycopg 3, the only PostgreSQL driver shipped."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError(
            f"The database URL is not valid ({e}); use sqlite:///path/to/resetbot.db or "
            "postgresql+psycopg://user@host/db."
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, echo: bool = False) -> Engine:
    """An engine configured for compare-and-set on SQLite (file) or PostgreSQL (psycopg 3).

    Raises ``ConfigError`` for an in-memory SQLite database (each connection would see its own empty database,
    and several threads share the bot's) and for any other backend or driver.
    """
    parsed = _normalise_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        if driver != "pysqlite":
            raise ConfigError(f"SQLite driver {driver!r} is not supported; use sqlite:///path/to/resetbot.db.")
        if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            raise ConfigError("An in-memory SQLite database cannot be shared between threads; give a file path.")
        engine = create_engine(
            parsed,
            echo=echo,
            connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
        )
        _install_sqlite_hooks(engine, busy_timeout_s)
        return engine
    if backend == "postgresql":
        if driver != "psycopg":
            raise ConfigError(f"PostgreSQL driver {driver!r} is not supported; use postgresql+psycopg://.")
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    raise ConfigError(f"Database {backend!r} is not supported; use a SQLite file or PostgreSQL.")


def _enter_wal(cursor: sqlite3.Cursor, busy_timeout_s: float) -> None:
    """``PRAGMA journal_mode = WAL``, waiting like any other statement when another process holds the file.

    SQLite does not call its busy handler for this pragma: turning a new file into WAL takes an exclusive lock
    directly, and a second process that connects in the same instant (two ``resetbot migrate``, two replicas
    starting on one new file) gets "database is locked" at once, about one time in five when both start together.
    Once the file is in WAL mode the pragma only reads the header, so the retry is rare and short.
    """
    deadline = time.monotonic() + busy_timeout_s
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)  # no event to await: SQLite gives none for a lock released by another process
        pause = min(pause * 2, 0.1)


def _install_sqlite_hooks(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Stop sqlite3 from issuing BEGIN itself (and from committing around DDL); _on_begin does it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            _enter_wal(cursor, busy_timeout_s)
            cursor.execute("PRAGMA foreign_keys = ON")
            # Durable at each checkpoint, not each commit: the WAL recommendation; a power cut may lose the last
            # transactions but never corrupts the file.
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = str(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")).upper()
        if mode not in _SQLITE_BEGIN_MODES:
            raise ValueError(f"{SQLITE_BEGIN_OPTION} must be one of {sorted(_SQLITE_BEGIN_MODES)}, not {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """A thread-safe factory of ``sqlmodel.Session`` bound to ``engine``.

    Objects stay readable after commit (``expire_on_commit=False``): handlers render a request after the
    transaction that changed it has ended. ``read_only=True`` is for views (status, App Home, exports): on SQLite
    its transactions begin DEFERRED so they do not queue behind writers; on PostgreSQL they are READ ONLY, so a
    write through one fails instead of slipping past the CAS discipline.
    """
    bind = engine
    if read_only:
        options: dict[str, Any] = (
            {SQLITE_BEGIN_OPTION: "DEFERRED"} if engine.dialect.name == "sqlite" else {"postgresql_readonly": True}
        )
        bind = engine.execution_options(**options)
    return sessionmaker(bind=bind, class_=Session, expire_on_commit=False)

