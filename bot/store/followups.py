"""Follow-up checks after a reset: adding them, claiming the due ones once across replicas, finishing,
retrying and skipping them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.models import (
    FollowUp,
)
from bot.store.shared import rowcount

_FOLLOWUP_PENDING, _FOLLOWUP_RUNNING, _FOLLOWUP_DONE, _FOLLOWUP_SKIPPED = "pending", "running", "done", "skipped"


def add_followups(session: Session, *, rows: Collection[FollowUp]) -> None:
    """Schedule checks; meant to run in the transaction that records the reset's success, so that a reset is
    never recorded without its follow-ups (nor the reverse)."""
    session.add_all(rows)
    session.flush()


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(col(FollowUp.state) == _FOLLOWUP_PENDING, col(FollowUp.due_at) <= now),
        sa.and_(col(FollowUp.state) == _FOLLOWUP_RUNNING, col(FollowUp.lease_until) <= now),
    )


def due_followups(session: Session, *, now: datetime, limit: int = 200) -> list[int]:
    """Ids of checks due (or whose claimant's lease ran out), oldest first. Reading them claims nothing."""
    # Ordered by id too: two replicas claiming rows with the same due_at lock them in the same order (no deadlock).
    rows = session.exec(select(FollowUp.id).where(_claimable(now)).order_by(col(FollowUp.due_at), col(FollowUp.id))
                        .limit(limit))
    return [int(r) for r in rows if r is not None]


def claim_followup(session: Session, *, followup_id: int, claim: str, now: datetime,
                   lease_until: datetime) -> FollowUp | None:
    """Compare-and-set one due check to ``running`` under ``claim``; None when another replica got it first."""
    result = session.execute(
        sa.update(FollowUp)
        .where(col(FollowUp.id) == followup_id, _claimable(now))
        .values(state=_FOLLOWUP_RUNNING, claim=claim, lease_until=lease_until, attempts=col(FollowUp.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return None
    return session.get(FollowUp, followup_id, populate_existing=True)


def _set_claimed(session: Session, *, ids: Collection[int], claim: str, values: Mapping[str, object]) -> int:
    """UPDATE the checks ``claim`` still holds (``running`` under it); a check taken over by another replica
    after this one's lease ran out is not touched. Returns how many were."""
    result = session.execute(
        sa.update(FollowUp)
        .where(col(FollowUp.id).in_(sorted(ids)), col(FollowUp.claim) == claim,
               col(FollowUp.state) == _FOLLOWUP_RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def finish_followup(session: Session, *, followup_id: int, claim: str, outcome: str, seen: int | None,
                    now: datetime) -> bool:
    """``running`` → ``done`` only for the holder of ``claim``: a replica whose lease was taken over loses."""
    return _set_claimed(session, ids=[followup_id], claim=claim, values={
        "state": _FOLLOWUP_DONE, "outcome": outcome, "seen_pwd_last_set": seen, "done_at": now, "lease_until": None,
    }) == 1


def retry_followup(session: Session, *, followup_id: int, claim: str, due_at: datetime,
                   seen: int | None = None, counted: bool = True) -> bool:
    """Give a claimed check back, due again at ``due_at``. The claim counted an attempt; ``counted=False`` takes
    it back (AD could not be read: nothing was looked at, and the attempts count drives the backoff and the
    audit trail)."""
    values: dict[str, object] = {
        "state": _FOLLOWUP_PENDING, "due_at": due_at, "claim": None, "lease_until": None, "seen_pwd_last_set": seen,
    }
    if not counted:
        values["attempts"] = col(FollowUp.attempts) - 1
    return _set_claimed(session, ids=[followup_id], claim=claim, values=values) == 1


def skip_followups(session: Session, *, request_id: str, kind: str, now: datetime, claim: str | None = None) -> int:
    """Retire the still-pending checks of one kind (the user replaced the password: no more reminders), and
    those ``claim`` holds itself (claimed in the same run, not yet answered: they must not speak after this)."""
    waiting = col(FollowUp.state) == _FOLLOWUP_PENDING
    if claim is not None:
        waiting = sa.or_(waiting, sa.and_(col(FollowUp.state) == _FOLLOWUP_RUNNING, col(FollowUp.claim) == claim))
    result = session.execute(
        sa.update(FollowUp)
        .where(col(FollowUp.request_id) == request_id, col(FollowUp.kind) == kind, waiting)
        .values(state=_FOLLOWUP_SKIPPED, done_at=now, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def drop_claimed_followups(session: Session, *, ids: Collection[int], claim: str, now: datetime) -> int:
    """Retire checks this claim holds without answering them (superseded by a later one due at once)."""
    return _set_claimed(session, ids=ids, claim=claim,
                        values={"state": _FOLLOWUP_SKIPPED, "done_at": now, "lease_until": None})


def followups_for(session: Session, *, request_id: str) -> list[FollowUp]:
    return list(session.exec(select(FollowUp).where(col(FollowUp.request_id) == request_id)
                             .order_by(col(FollowUp.kind), col(FollowUp.step))))
