"""The database: reachable with the configured URL, and no migration pending."""

from __future__ import annotations

from sqlalchemy import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from bot import messages
from bot.db import make_engine
from bot.errors import ConfigError, DatabaseUnavailableError, SchemaAheadError
from bot.services.doctor.plan import S_DATABASE, CheckResult, fail, ok


def _pending(engine: Engine) -> list[str]:
    """Migrations not yet applied (bot.schema is imported here: it brings alembic, which only this check needs)."""
    from bot import schema  # noqa: PLC0415

    return list(schema.pending(engine))


def check_database(url: str) -> CheckResult:
    try:
        engine = make_engine(url)
    except ConfigError as e:
        return fail(S_DATABASE, str(e).rstrip("."))
    backend = engine.dialect.name
    try:
        with engine.connect():
            pass
        pending = _pending(engine)
    except SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or type(e).__name__).strip().splitlines()[0]
        password = make_url(url).password
        if password:
            reason = reason.replace(str(password), "***")
        return fail(S_DATABASE, messages.doctor.doctor_db_unreachable(backend, reason))
    except (DatabaseUnavailableError, SchemaAheadError) as e:  # their messages hide the password
        return fail(S_DATABASE, str(e).rstrip("."))
    finally:
        engine.dispose()
    if pending:
        return fail(S_DATABASE, messages.doctor.doctor_db_pending(pending))
    return ok(S_DATABASE, messages.doctor.doctor_db_ok(backend))
