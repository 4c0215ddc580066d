"""Opening the database for the database-only commands (``migrate``, ``audit``): only ``RESETBOT_DATABASE_URL``
is read (``StorageSettings``), so they work where Slack, Entra and AD are not configured."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import DBAPIError

from bot import messages, schema
from bot.db import make_engine
from bot.errors import DatabaseUnavailableError
from bot.settings import load_storage_settings


def open_database(*, must_exist: bool) -> Engine:
    """An engine on the configured database. ``must_exist``: a SQLite file that is not there is an error rather
    than a new empty database (reading commands must not create one by a typo in the path).

    Raises ``ConfigError`` for a bad URL and ``DatabaseUnavailableError`` for a database that is not there.
    """
    engine = make_engine(load_storage_settings().database_url)
    database = engine.url.database
    if must_exist and engine.dialect.name == "sqlite" and database and not Path(database).is_file():
        engine.dispose()
        raise DatabaseUnavailableError(messages.cli.database_missing(schema.describe(engine)))
    return engine


def require_table(engine: Engine, table: str) -> None:
    """Fail with one sentence when the database cannot be reached or is not resetbot's (``table`` is missing)."""
    try:
        present = inspect(engine).has_table(table)
    except DBAPIError as e:
        raise DatabaseUnavailableError(
            messages.cli.database_unavailable(schema.describe(engine), schema.reason(e))) from None
    if not present:
        raise DatabaseUnavailableError(messages.cli.not_a_resetbot_database(schema.describe(engine)))
