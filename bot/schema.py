"""The database schema's version: bring a database up to the revision this code expects, or say what it lacks.

Alembic's environment ships inside the package (``bot/migrations``) and is configured here, in code, so nothing
needs an alembic.ini at run time, and tests and production take the same path (``upgrade``).

Several replicas may start at once against one PostgreSQL database. The whole upgrade is one transaction that
first takes a transaction-scoped advisory lock keyed on the current schema: the second replica waits for the
first to commit, then finds nothing left to do; PostgreSQL's DDL is transactional, so a failed migration leaves
nothing half-applied. On SQLite the engine begins every transaction with ``BEGIN IMMEDIATE`` (``bot.db``), which
already serialises upgraders on the file.

Alembic is imported only when it has work to do. At nearly every start the database is already at the newest
revision shipped, and one query says so (``_at_shipped_head``); importing alembic and reading its revision files
cost about 0.15 s of every start (issue 13, part 8). Anything else (an older revision, a newer one, no version
table) is decided by alembic, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot import messages, store
from bot.db import SQLITE_BEGIN_OPTION
from bot.errors import DatabaseUnavailableError, SchemaAheadError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)
# Alembic announces its dialect at INFO each time it looks at a database; what was applied is logged here instead.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
# And its plugins at INFO when it is first imported, which is now after logging is set up (see the module doc).
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

#: The revision whose tables ``SQLModel.metadata.create_all`` made before migrations existed: a database made
#: that way is stamped at it, then upgraded from there.
PRE_MIGRATIONS_REVISION = "0001"

#: First key of the two-key advisory lock ("rbot"); the second is the hash of the current schema's name, so
#: databases that share one server through different schemas do not wait for each other.
ADVISORY_LOCK_NAMESPACE = 0x72626F74


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, made in code; ``connection`` is what ``bot/migrations/env.py`` migrates."""
    from alembic.config import Config  # noqa: PLC0415 (only when there is work: see the module doc)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Revision files read in order on disk: 0001_initial.py, 0002_....py (configparser needs the doubled %).
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    """The revisions shipped with this code (read once per process: they cannot change while it runs)."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 (see the module doc)

    return ScriptDirectory.from_config(alembic_config())


def heads() -> list[str]:
    """The revision(s) this code expects a database to be at (one, unless two branches were merged badly)."""
    return list(_script().get_heads())


def revisions() -> list[str]:
    """Every revision shipped, oldest first: what an empty database gets."""
    return [rev.revision for rev in reversed(list(_script().walk_revisions()))]


def next_revision_id() -> str:
    """The id for a new revision: the next number, zero-padded (``0002``), so files sort in the order they apply."""
    return f"{sum(1 for _ in _script().walk_revisions()) + 1:04d}"


def upgrade(engine: Engine) -> list[str]:
    """Apply every pending revision (under the lock, see the module doc) and return the ids applied, oldest
    first; empty when the database was already up to date. Also makes sure the audit chain's head row exists.

    Raises ``DatabaseUnavailableError`` when the database cannot be reached and ``SchemaAheadError`` when it was
    migrated by a newer version of resetbot.
    """
    with _connection(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, hashtext(coalesce(current_schema(), '')))"),
                {"namespace": ADVISORY_LOCK_NAMESPACE},
            )
        todo = _pending(conn)
        if todo:
            from alembic import command  # noqa: PLC0415 (only when there is work: see the module doc)
            from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

            if not MigrationContext.configure(conn).get_current_heads() and _made_before_migrations(conn):
                command.stamp(alembic_config(conn), PRE_MIGRATIONS_REVISION)
                todo = _pending(conn)
            if todo:
                command.upgrade(alembic_config(conn), "heads")
                log.info("applied schema revisions %s to %s", ", ".join(todo), describe(engine))
        # Data, not schema: the chain's head row. Idempotent, so it is simply ensured on every upgrade.
        with Session(bind=conn) as session:
            store.audit.ensure_audit_head(session)
            session.flush()
        return todo


def _made_before_migrations(conn: Connection) -> bool:
    """A database from before migrations (``create_all``) has the tables of the initial revision, unversioned."""
    return {"reset_request", "audit_event", "audit_head"} <= set(inspect(conn).get_table_names())


def pending(engine: Engine) -> list[str]:
    """The revision ids this database lacks, oldest first: empty means up to date; every revision for an empty
    database. Reads only (it never creates alembic's version table).

    Raises ``DatabaseUnavailableError`` and ``SchemaAheadError`` like ``upgrade``.
    """
    with _connection(engine, write=False) as conn:
        return _pending(conn)


def current(engine: Engine) -> list[str]:
    """The revision(s) the database is at; empty for a database resetbot never migrated."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 (see the module doc)

    with _connection(engine, write=False) as conn:
        return list(MigrationContext.configure(conn).get_current_heads())


def shipped_head() -> str | None:
    """The newest revision shipped, from the revision files' names alone: they are numbered in the order they
    apply (``next_revision_id``, ``NNNN_slug.py``), and a test checks that this is alembic's head."""
    numbers = sorted(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))
    return numbers[-1] if numbers else None


def _at_shipped_head(conn: Connection) -> bool:
    """True only when the database records exactly the newest revision shipped: up to date, without alembic."""
    head = shipped_head()
    if head is None or not inspect(conn).has_table("alembic_version"):  # checked first: a failed SELECT would
        return False  # abort a PostgreSQL transaction
    return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [head]


def _pending(conn: Connection) -> list[str]:
    if _at_shipped_head(conn):
        return []
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 (see the module doc)

    at = MigrationContext.configure(conn).get_current_heads()
    script = _script()
    unknown = [rev for rev in at if _lookup(script, rev) is None]
    if unknown:
        raise SchemaAheadError(messages.cli.schema_ahead(unknown, heads()))
    revisions = script.iterate_revisions("heads", at or "base")
    return [rev.revision for rev in reversed(list(revisions)) if rev.revision not in at]


def _lookup(script: ScriptDirectory, revision: str) -> object | None:
    from alembic.util.exc import CommandError  # noqa: PLC0415 (see the module doc)

    try:
        return script.get_revision(revision)
    except CommandError:
        return None


@contextmanager
def _connection(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """A connection (in a transaction when ``write``); failing to connect becomes one sentence naming the
    database, password hidden. A read on SQLite begins DEFERRED, so it does not queue behind writers."""
    bind = engine
    if not write and engine.dialect.name == "sqlite":
        bind = engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
    try:
        conn = bind.connect()
    except DBAPIError as e:  # refused, unknown host, bad login, "file is not a database", ...
        raise DatabaseUnavailableError(messages.cli.database_unavailable(describe(engine), reason(e))) from None
    with conn:
        if write:
            with conn.begin():
                yield conn
        else:
            yield conn


def describe(engine: Engine) -> str:
    """How to name the database to an operator: its URL without the password."""
    return engine.url.render_as_string(hide_password=True)


def reason(error: Exception) -> str:
    """The driver's first line about what went wrong (it never contains the password)."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(original).__name__
