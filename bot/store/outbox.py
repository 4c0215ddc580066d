"""The outbox: Slack messages written with the decision they announce, claimed once across replicas for
delivery, retried, given up and pruned.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlmodel import Session, col, select

from bot.models import (
    OutboxMessage,
)
from bot.store.shared import rowcount

_OUTBOX_PENDING, _OUTBOX_SENDING, _OUTBOX_SENT, _OUTBOX_GIVEN_UP = "pending", "sending", "sent", "given_up"


def add_outbox(session: Session, *, messages: Collection[OutboxMessage]) -> list[int]:
    """Queue messages in the caller's transaction (the one recording what they announce); their ids, so the
    caller can have them delivered right after the commit."""
    session.add_all(messages)
    session.flush()
    return [m.id for m in messages if m.id is not None]


def _outbox_claimable(now: datetime) -> sa.ColumnElement[bool]:
    """Due (or its sender's lease ran out), and not behind an undelivered earlier message to the same place: a
    conversation hears its messages in the order they were decided (never "healthy" before "degraded"), even
    when the earlier one is waiting out a retry."""
    earlier = orm.aliased(OutboxMessage)
    ahead = sa.exists().where(
        col(earlier.channel) == col(OutboxMessage.channel),
        col(earlier.thread_ts).is_not_distinct_from(col(OutboxMessage.thread_ts)),
        col(earlier.id) < col(OutboxMessage.id),
        col(earlier.state).in_([_OUTBOX_PENDING, _OUTBOX_SENDING]),
    )
    return sa.and_(
        sa.or_(
            sa.and_(col(OutboxMessage.state) == _OUTBOX_PENDING, col(OutboxMessage.next_at) <= now),
            sa.and_(col(OutboxMessage.state) == _OUTBOX_SENDING, col(OutboxMessage.lease_until) <= now),
        ),
        ~ahead,
    )


def prune_outbox(session: Session, *, before: datetime) -> int:
    """Forget messages written before ``before`` that are done with (sent or given up); one still owed is kept,
    however old (it is given up, and audited, first)."""
    return rowcount(session.execute(
        sa.delete(OutboxMessage)
        .where(col(OutboxMessage.state).in_((_OUTBOX_SENT, _OUTBOX_GIVEN_UP)), col(OutboxMessage.created_at) < before)
        .execution_options(synchronize_session=False)))


def due_outbox(session: Session, *, now: datetime, limit: int = 200,
               places: Collection[tuple[str, str | None]] | None = None) -> list[int]:
    """Ids of messages ready to send, in the order they were written (``places``: only those to these
    conversations, as (channel, thread ts)). Reading them claims nothing."""
    query = select(OutboxMessage.id).where(_outbox_claimable(now))
    if places is not None:
        query = query.where(sa.or_(sa.false(), *(
            sa.and_(col(OutboxMessage.channel) == channel, col(OutboxMessage.thread_ts).is_not_distinct_from(ts))
            for channel, ts in places)))
    rows = session.exec(query.order_by(col(OutboxMessage.id)).limit(limit))
    return [int(r) for r in rows if r is not None]


def claim_outbox(session: Session, *, message_id: int, claim: str, now: datetime,
                 lease_until: datetime) -> OutboxMessage | None:
    """Compare-and-set one ready message to ``sending`` under ``claim`` (counting an attempt); None when another
    replica got it first, it is not due, or an earlier message to the same place is still undelivered."""
    result = session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, _outbox_claimable(now))
        .values(state=_OUTBOX_SENDING, claim=claim, lease_until=lease_until,
                attempts=col(OutboxMessage.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return None
    return session.get(OutboxMessage, message_id, populate_existing=True)


def _set_outbox_claimed(session: Session, *, message_id: int, claim: str, values: Mapping[str, object]) -> bool:
    """UPDATE the message only while ``claim`` still holds it (``sending`` under it)."""
    result = session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, col(OutboxMessage.claim) == claim,
               col(OutboxMessage.state) == _OUTBOX_SENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def mark_outbox_sent(session: Session, *, message_id: int, claim: str, now: datetime, ts: str | None) -> bool:
    """``sending`` → ``sent`` for the holder of ``claim``. False: its lease ran out and another replica took the
    message over (it may then be posted twice: the one duplicate window an outbox without an idempotency key has)."""
    return _set_outbox_claimed(session, message_id=message_id, claim=claim, values={
        "state": _OUTBOX_SENT, "sent_at": now, "ts": ts, "lease_until": None, "last_error": None})


def retry_outbox(session: Session, *, message_id: int, claim: str, next_at: datetime, error: str) -> bool:
    """Hand a message whose post failed back, due again at ``next_at``."""
    return _set_outbox_claimed(session, message_id=message_id, claim=claim, values={
        "state": _OUTBOX_PENDING, "next_at": next_at, "claim": None, "lease_until": None, "last_error": error[:64]})


def give_up_outbox(session: Session, *, message_id: int, claim: str, now: datetime, error: str) -> bool:
    """Stop trying a message (past the horizon, or Slack can never take it); the caller audits it."""
    return _set_outbox_claimed(session, message_id=message_id, claim=claim, values={
        "state": _OUTBOX_GIVEN_UP, "given_up_at": now, "lease_until": None, "last_error": error[:64]})


def outbox_messages(session: Session, *, states: Collection[str] | None = None,
                    request_id: str | None = None) -> list[OutboxMessage]:
    """Messages in the order they were written, optionally only in ``states`` or of one request."""
    query = select(OutboxMessage).order_by(col(OutboxMessage.id))
    if states is not None:
        query = query.where(col(OutboxMessage.state).in_(sorted(states)))
    if request_id is not None:
        query = query.where(col(OutboxMessage.request_id) == request_id)
    return list(session.exec(query).all())
