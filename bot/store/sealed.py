"""A temporary password sealed until its one reveal, spent by the reveal and wiped when it expires."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col

from bot.models import (
    SealedSecret,
)

# --- sealed secrets ---------------------------------------------------------------------------------------------


def seal(session: Session, *, request_id: str, ciphertext: str, expires_at: datetime, kind: str = "password") -> None:
    session.add(SealedSecret(request_id=request_id, ciphertext=ciphertext, expires_at=expires_at, kind=kind))
    session.flush()


def unseal_once(session: Session, *, request_id: str, now: datetime) -> tuple[str, str] | None:
    """Take (kind, ciphertext) out, deleting it in the same statement: exactly one caller ever gets it."""
    row = session.execute(
        sa.delete(SealedSecret)
        .where(col(SealedSecret.request_id) == request_id, col(SealedSecret.expires_at) > now)
        .returning(col(SealedSecret.kind), col(SealedSecret.ciphertext))
    ).first()
    return (str(row[0]), str(row[1])) if row is not None else None


def has_sealed(session: Session, *, request_id: str) -> bool:
    return session.get(SealedSecret, request_id) is not None


def wipe_expired_secrets(session: Session, *, now: datetime) -> list[str]:
    """Delete every sealed secret past its time; returns their request ids (for the audit)."""
    rows = session.execute(
        sa.delete(SealedSecret).where(col(SealedSecret.expires_at) <= now).returning(col(SealedSecret.request_id))
    ).all()
    return [str(r[0]) for r in rows]
