"""What the abuse limits count (``bot.domain.limits``): open and recent requests, recent resets of a target, and
whether a limit already alerted security within its window.

Race-safety: the counts and the insert they allow must be one decision across replicas, or two replicas could both
read "9 of 10" and both make the tenth. ``lock_intake`` serialises every request intake: on PostgreSQL a
transaction-scoped advisory lock (READ COMMITTED then shows each statement what the previous holder committed); on
SQLite every write transaction already begins IMMEDIATE, holding the database's one write lock. Take it first in
the transaction that makes the request, before reading these counts.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.domain.lifecycle import RequestState
from bot.models import AuditEvent, ResetRequest

#: The advisory lock's key (any constant no other part of the product uses): "rsbt" "lmit" as two int4.
INTAKE_LOCK_KEY = (0x72736274, 0x6C6D6974)

#: A request in these states holds its target: another request for the same person is refused.
OPEN_STATES = (RequestState.PENDING_APPROVAL, RequestState.APPROVED, RequestState.RESETTING)


def lock_intake(session: Session) -> None:
    """Serialise request intake until this transaction ends (see the module docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(*INTAKE_LOCK_KEY)))


def open_request_for(session: Session, *, target_entra_id: str) -> ResetRequest | None:
    """The target's oldest request still pending, approved or resetting, if any."""
    return session.exec(
        select(ResetRequest)
        .where(col(ResetRequest.target_entra_id) == target_entra_id, col(ResetRequest.state).in_(OPEN_STATES))
        .order_by(col(ResetRequest.created_at)).limit(1)
    ).first()


def count_requests_since(session: Session, *, since: datetime, requester: str | None = None) -> int:
    """Requests made at or after ``since`` (by ``requester``, or by anyone)."""
    query = sa.select(sa.func.count()).select_from(ResetRequest).where(col(ResetRequest.created_at) >= since)
    if requester is not None:
        query = query.where(col(ResetRequest.requester) == requester)
    return int(session.execute(query).scalar_one())


def reset_since(session: Session, *, target_entra_id: str, since: datetime) -> bool:
    """Whether a reset of this target succeeded at or after ``since`` (its last change, the verdict, is then)."""
    query = sa.select(col(ResetRequest.id)).where(
        col(ResetRequest.target_entra_id) == target_entra_id, col(ResetRequest.state) == RequestState.SUCCEEDED,
        col(ResetRequest.updated_at) >= since).limit(1)
    return session.execute(query).first() is not None


def alerted_since(session: Session, *, action: str, actor: str, since: datetime) -> bool:
    """Whether the audit trail holds ``action`` by ``actor`` at or after ``since``: a limit's alert already sent
    within its window (the trail is where each alert is recorded, so every replica sees it)."""
    query = sa.select(col(AuditEvent.seq)).where(
        col(AuditEvent.action) == action, col(AuditEvent.actor) == actor, col(AuditEvent.at) >= since).limit(1)
    return session.execute(query).first() is not None
