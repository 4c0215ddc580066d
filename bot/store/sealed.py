"""A temporary password sealed until its one reveal: claimed by a click, spent once Slack showed it (or given
back when it could not), and wiped when it expires."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col

from bot.models import (
    SealedSecret,
)
from bot.store.shared import rowcount

# --- sealed secrets ---------------------------------------------------------------------------------------------


def seal(session: Session, *, request_id: str, ciphertext: str, expires_at: datetime, kind: str = "password") -> None:
    session.add(SealedSecret(request_id=request_id, ciphertext=ciphertext, expires_at=expires_at, kind=kind))
    session.flush()


def claim_sealed(session: Session, *, request_id: str, now: datetime, until: datetime) -> tuple[str, str] | None:
    """(kind, ciphertext) for one reveal, held by it until ``until`` (a compare-and-set: while one click holds it,
    every other finds nothing); None when it is gone, past its time, or held by a reveal in progress. Nothing is
    deleted: that waits until the password was really shown (``spend_sealed``)."""
    row = session.execute(
        sa.update(SealedSecret)
        .where(col(SealedSecret.request_id) == request_id, col(SealedSecret.expires_at) > now,
               sa.or_(col(SealedSecret.claimed_until).is_(None), col(SealedSecret.claimed_until) <= now))
        .values(claimed_until=until)
        .returning(col(SealedSecret.kind), col(SealedSecret.ciphertext))
        .execution_options(synchronize_session=False)
    ).first()
    return (str(row[0]), str(row[1])) if row is not None else None


def is_claimed(session: Session, *, request_id: str, now: datetime) -> bool:
    """Whether a reveal in progress holds the sealed secret (so a second click is told to wait, not that it is
    gone)."""
    return session.execute(
        sa.select(col(SealedSecret.request_id))
        .where(col(SealedSecret.request_id) == request_id, col(SealedSecret.expires_at) > now,
               col(SealedSecret.claimed_until) > now)
    ).first() is not None


def spend_sealed(session: Session, *, request_id: str, claimed_until: datetime) -> bool:
    """Delete it once shown, only under the claim that showed it (its ``claimed_until``): True if this did."""
    result = session.execute(
        sa.delete(SealedSecret)
        .where(col(SealedSecret.request_id) == request_id, col(SealedSecret.claimed_until) == claimed_until)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def release_claim(session: Session, *, request_id: str, claimed_until: datetime) -> bool:
    """Give the claim back when the password could not be shown: the next click may reveal it."""
    result = session.execute(
        sa.update(SealedSecret)
        .where(col(SealedSecret.request_id) == request_id, col(SealedSecret.claimed_until) == claimed_until)
        .values(claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def extend_sealed(session: Session, *, request_id: str, expires_at: datetime) -> bool:
    """Give a sealed password a new deadline (a reset whose verdict came late: its ten minutes to reveal run from
    the verdict); True if there is one."""
    result = session.execute(
        sa.update(SealedSecret).where(col(SealedSecret.request_id) == request_id).values(expires_at=expires_at)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


class Discard(StrEnum):
    """What ``discard_sealed`` found."""

    #: No sealed password: never made, revealed already, or wiped.
    NONE = "none"
    #: Deleted, never claimed by a reveal: nobody read it.
    DISCARDED = "discarded"
    #: A reveal claimed it: Slack may be showing it right now. A live claim is left for that reveal to spend (its
    #: ``revealed`` audit); a lapsed one (its reveal never said how it ended) is deleted. Either way the password
    #: must be treated as read.
    REVEALING = "revealing"


def discard_sealed(session: Session, *, request_id: str, now: datetime) -> Discard:
    """Delete a sealed password nobody may read any more, unless a reveal is showing it right now (a compare-and-set
    against ``claim_sealed``: whichever commits first, the other sees it). What it found, for the caller to say."""
    deleted = session.execute(
        sa.delete(SealedSecret)
        .where(col(SealedSecret.request_id) == request_id,
               sa.or_(col(SealedSecret.claimed_until).is_(None), col(SealedSecret.claimed_until) <= now))
        .returning(col(SealedSecret.claimed_until))
        .execution_options(synchronize_session=False)
    ).first()
    if deleted is not None:
        return Discard.DISCARDED if deleted[0] is None else Discard.REVEALING
    held = session.execute(sa.select(col(SealedSecret.request_id))
                           .where(col(SealedSecret.request_id) == request_id)).first()
    return Discard.NONE if held is None else Discard.REVEALING


def has_sealed(session: Session, *, request_id: str) -> bool:
    return session.get(SealedSecret, request_id) is not None


def wipe_expired_secrets(session: Session, *, now: datetime) -> list[str]:
    """Delete every sealed secret past its time, unless a reveal is showing it right now; returns their request
    ids (for the audit)."""
    rows = session.execute(
        sa.delete(SealedSecret)
        .where(col(SealedSecret.expires_at) <= now,
               sa.or_(col(SealedSecret.claimed_until).is_(None), col(SealedSecret.claimed_until) <= now))
        .returning(col(SealedSecret.request_id))
    ).all()
    return [str(r[0]) for r in rows]
