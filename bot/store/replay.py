"""Signed HTTP requests already seen, so a replayed one is refused (HTTP mode)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlmodel import Session, col

from bot.models import (
    SeenSlackRequest,
    utcnow,
)
from bot.store.shared import rowcount


def remember_signature(session: Session, *, signature: str, at: datetime | None = None) -> bool:
    """Record a served request's signature: True the first time, False if it was already there (a replay).

    One INSERT ... ON CONFLICT DO NOTHING, so two replicas handed the same request at once cannot both win.
    """
    values: dict[str, Any] = {"signature": signature, "seen_at": at or utcnow()}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 (lazy: see bot.store's doc)
        statement: Any = postgresql.insert(SeenSlackRequest).values(values).on_conflict_do_nothing(
            index_elements=["signature"])
    elif dialect == "sqlite":
        statement = sqlite.insert(SeenSlackRequest).values(values).on_conflict_do_nothing(
            index_elements=["signature"])
    else:  # pragma: no cover - only the two dialects are supported
        if session.get(SeenSlackRequest, signature) is not None:
            return False
        session.add(SeenSlackRequest(**values))
        session.flush()
        return True
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT through the ORM session.
    return session.execute(statement.returning(col(SeenSlackRequest.signature))).first() is not None


def forget_signatures(session: Session, *, before: datetime) -> int:
    """Delete signatures seen before ``before`` (older than Slack's window, so bolt refuses them anyway)."""
    result = session.execute(
        sa.delete(SeenSlackRequest).where(col(SeenSlackRequest.seen_at) < before)
        .execution_options(synchronize_session=False))
    return rowcount(result)
