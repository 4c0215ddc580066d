"""Migrated databases for tests, made once per test run and copied, instead of migrated again for every test.

Applying the fifteen-odd revisions through alembic costs about half a second on SQLite and a second on PostgreSQL
(alembic's own work per revision, not the database's): hundreds of storage tests and every ``resetbot doctor``
test paid it, minutes of the suite. Each test still gets a database of its own, made by exactly the statements the
migrations run: a SQLite file is a byte copy of one migrated file; a PostgreSQL schema replays the statements one
real upgrade sent (recorded at the driver, so alembic's version rows and the audit head's row come too). The
migrations themselves are tested where they are the subject (``tests/store/test_migrations.py``, the process
tests that start the bot on an empty database).
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from bot import schema
from bot.db import make_engine

_template_dir: Path | None = None
_pg_statements: list[tuple[str, Any]] | None = None


def _sqlite_template() -> Path:
    global _template_dir  # noqa: PLW0603 (one template per test process)
    if _template_dir is None:
        made = Path(tempfile.mkdtemp(prefix="resetbot-template-"))
        engine = make_engine(f"sqlite:///{made / 'resetbot.db'}")
        try:
            schema.upgrade(engine)
        finally:
            engine.dispose()
        with closing(sqlite3.connect(made / "resetbot.db")) as conn:  # all in the main file: copying it is enough
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        atexit.register(shutil.rmtree, made, ignore_errors=True)
        _template_dir = made
    return _template_dir / "resetbot.db"


def migrated_sqlite_file(path: Path) -> str:
    """Put a migrated SQLite database at ``path`` (which must not exist yet) and return its URL."""
    if path.exists():
        raise FileExistsError(path)
    shutil.copyfile(_sqlite_template(), path)
    return f"sqlite:///{path}"


def _record_pg_upgrade(engine: Engine) -> list[tuple[str, Any]]:
    """The statements a real upgrade of ``engine``'s empty schema sends, minus its catalogue reads."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters or None))

    event.listen(engine, "before_cursor_execute", record)
    try:
        schema.upgrade(engine)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def migrate_pg(engine: Engine) -> None:
    """Bring ``engine``'s empty PostgreSQL schema to the newest revision: the first time by a real upgrade
    (recorded), then by replaying what it sent, in one transaction."""
    global _pg_statements  # noqa: PLW0603 (one recording per test process)
    if _pg_statements is None:
        _pg_statements = _record_pg_upgrade(engine)
        return
    with engine.begin() as conn:
        cursor = conn.connection.cursor()
        for statement, parameters in _pg_statements:
            cursor.execute(statement, parameters)
