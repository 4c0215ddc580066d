"""The audit trail: appending an event under the single ``audit_head`` row (so the hash chain cannot fork),
its head, and reading it back for export, verification and a request's timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlmodel import Session, col, select

from bot.domain.audit import GENESIS_HASH, AuditDraft, canonical_detail, event_hash
from bot.models import (
    AUDIT_HEAD_ID,
    AuditEvent,
    AuditHead,
    utcnow,
)

# --- audit ----------------------------------------------------------------------------------------------------


def ensure_audit_head(session: Session) -> None:
    """Insert the chain's head row (seq 0, genesis hash) unless it exists; safe when replicas race to do it."""
    values: dict[str, Any] = {"id": AUDIT_HEAD_ID, "last_seq": 0, "last_hash": GENESIS_HASH}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 (lazy: see bot.store's doc)
        session.execute(postgresql.insert(AuditHead).values(values).on_conflict_do_nothing(index_elements=["id"]))
    elif dialect == "sqlite":
        session.execute(sqlite.insert(AuditHead).values(values).on_conflict_do_nothing(index_elements=["id"]))
    elif session.get(AuditHead, AUDIT_HEAD_ID) is None:  # pragma: no cover - only the two dialects are supported
        session.add(AuditHead(id=AUDIT_HEAD_ID, last_seq=0, last_hash=GENESIS_HASH))
        session.flush()


def _claim_next_seq(session: Session) -> tuple[int, str]:
    """Take the audit head's lock and the next seq; returns (seq, previous hash)."""
    claim = (
        sa.update(AuditHead)
        .where(col(AuditHead.id) == AUDIT_HEAD_ID)
        .values(last_seq=col(AuditHead.last_seq) + 1)
        .returning(col(AuditHead.last_seq), col(AuditHead.last_hash))
        .execution_options(synchronize_session=False)
    )
    row = session.execute(claim).first()
    if row is None:
        ensure_audit_head(session)
        row = session.execute(claim).one()
    return int(row[0]), str(row[1])


def append_audit(session: Session, *, draft: AuditDraft, at: datetime | None = None) -> AuditEvent:
    """Append one event to the hash chain, in the caller's transaction, and return it.

    Empty optional strings are stored as NULL, so that the CSV export (where both are an empty cell) reads back
    exactly. Raises ``ValueError`` / ``TypeError`` if the detail is not a JSON object or has a key that looks
    like a secret — before anything is written.
    """
    detail = canonical_detail(draft.detail)
    seq, prev_hash = _claim_next_seq(session)
    event = AuditEvent(
        seq=seq,
        at=at or utcnow(),
        request_id=draft.request_id or None,
        actor=draft.actor,
        action=str(draft.action),
        from_state=draft.from_state or None,
        to_state=draft.to_state or None,
        correlation_id=draft.correlation_id or None,
        graph_operation_id=draft.graph_operation_id or None,
        verdict=draft.verdict or None,
        detail=detail,
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    session.execute(
        sa.update(AuditHead)
        .where(col(AuditHead.id) == AUDIT_HEAD_ID)
        .values(last_hash=event.hash)
        .execution_options(synchronize_session=False)
    )
    return event


def get_audit_head(session: Session) -> tuple[int, str]:
    """(last seq, last hash) of the chain — pass it to ``verify_chain(head=...)`` to detect a truncated tail."""
    head = session.get(AuditHead, AUDIT_HEAD_ID, populate_existing=True)
    return (0, GENESIS_HASH) if head is None else (head.last_seq, head.last_hash)


def iter_audit(session: Session, *, after_seq: int = 0, batch_size: int = 500) -> Iterator[AuditEvent]:
    """Every audit event with ``seq > after_seq``, in chain order, fetched in batches (keyset pagination)."""
    last = after_seq
    while True:
        query = select(AuditEvent).where(col(AuditEvent.seq) > last).order_by(col(AuditEvent.seq)).limit(batch_size)
        batch = list(session.exec(query).all())
        yield from batch
        if len(batch) < batch_size:
            return
        last = batch[-1].seq


def audit_between(
    session: Session, *, since: datetime, until: datetime | None = None, batch_size: int = 500
) -> Iterator[AuditEvent]:
    """The events stamped at or after ``since`` and before ``until`` (open-ended without it), in chain order,
    fetched in batches (keyset pagination on ``seq``): what an audit export of a period holds."""
    last = 0
    while True:
        query = select(AuditEvent).where(col(AuditEvent.seq) > last, col(AuditEvent.at) >= since)
        if until is not None:
            query = query.where(col(AuditEvent.at) < until)
        batch = list(session.exec(query.order_by(col(AuditEvent.seq)).limit(batch_size)).all())
        yield from batch
        if len(batch) < batch_size:
            return
        last = batch[-1].seq


def audit_for_request(session: Session, *, request_id: str) -> list[AuditEvent]:
    """The request's timeline (its events in chain order). Not verifiable on its own: the chain spans requests."""
    query = select(AuditEvent).where(col(AuditEvent.request_id) == request_id).order_by(col(AuditEvent.seq))
    return list(session.exec(query).all())
