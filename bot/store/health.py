"""Health pings: one round per slot across replicas, the results, the transitions and pruning."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlmodel import Session, col, select

from bot.models import (
    HealthResult,
    HealthSlot,
    HealthTransition,
    utcnow,
)
from bot.store.shared import rowcount


def claim_health_slot(session: Session, *, kind: str, slot: int, runner: str, at: datetime | None = None) -> bool:
    """Claim a round (or a day's summary) for this replica: an INSERT ... ON CONFLICT DO NOTHING of the slot's
    row; True for the one caller whose row went in. Commit before running the slot, so others see the claim."""
    values: dict[str, Any] = {"kind": kind, "slot": slot, "runner": runner, "claimed_at": at or utcnow()}
    dialect = session.get_bind().dialect.name
    insert: Any = sqlite.insert(HealthSlot)
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 (lazy: see bot.store's doc)
        insert = postgresql.insert(HealthSlot)
    # RETURNING, not rowcount: an ORM-enabled INSERT's result does not report rows on every driver.
    claimed = session.execute(insert.values(values).on_conflict_do_nothing(index_elements=["kind", "slot"])
                              .returning(col(HealthSlot.slot))).first()
    return claimed is not None


def count_health_slots(session: Session, *, kind: str, since_slot: int = 0) -> int:
    query = sa.select(sa.func.count()).select_from(HealthSlot).where(
        col(HealthSlot.kind) == kind, col(HealthSlot.slot) >= since_slot)
    return int(session.execute(query).scalar_one())


def add_health_results(session: Session, *, round_slot: int, results: Mapping[str, tuple[bool, str]],
                       at: datetime | None = None) -> None:
    """Store one round's results, ``{check: (ok, detail)}``."""
    when = at or utcnow()
    for check, (ok, detail) in results.items():
        session.add(HealthResult(round_slot=round_slot, check_name=check, ok=ok, detail=detail, at=when))
    session.flush()


def latest_health_results(session: Session) -> dict[str, HealthResult]:
    """Each check's most recent result (by round, then insertion), whichever replica stored it."""
    ranked = sa.select(
        col(HealthResult.id),
        sa.func.row_number().over(partition_by=col(HealthResult.check_name),
                                  order_by=(col(HealthResult.round_slot).desc(), col(HealthResult.id).desc()))
        .label("rank"),
    ).subquery()
    query = select(HealthResult).join(ranked, col(HealthResult.id) == ranked.c.id).where(ranked.c.rank == 1)
    return {r.check_name: r for r in session.exec(query).all()}


def health_results_for(session: Session, *, round_slot: int) -> list[HealthResult]:
    query = select(HealthResult).where(col(HealthResult.round_slot) == round_slot).order_by(col(HealthResult.id))
    return list(session.exec(query).all())


def health_failures_since(session: Session, *, since: datetime) -> dict[str, tuple[int, int]]:
    """``{check: (results, failures)}`` stored since ``since``, for the daily summary."""
    failed = sa.func.sum(sa.case((col(HealthResult.ok).is_(False), 1), else_=0))
    query = (sa.select(col(HealthResult.check_name), sa.func.count(), failed)
             .where(col(HealthResult.at) >= since).group_by(col(HealthResult.check_name)))
    return {str(name): (int(total), int(bad or 0)) for name, total, bad in session.execute(query).all()}


def last_health_transition(session: Session) -> HealthTransition | None:
    query = select(HealthTransition).order_by(col(HealthTransition.seq).desc()).limit(1)
    return session.exec(query).first()


def add_health_transition(session: Session, *, transition: HealthTransition) -> bool:
    """Insert a transition whose ``seq`` follows the last one; False when another replica's took that seq first
    (then it announces the change, not this caller)."""
    values = {c.name: getattr(transition, c.name) for c in HealthTransition.__table__.columns}  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert: Any = sqlite.insert(HealthTransition)
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 (lazy: see bot.store's doc)
        insert = postgresql.insert(HealthTransition)
    claimed = session.execute(insert.values(values).on_conflict_do_nothing(index_elements=["seq"])
                              .returning(col(HealthTransition.seq))).first()
    return claimed is not None


def recent_health_transitions(session: Session, *, limit: int = 5, since: datetime | None = None
                              ) -> list[HealthTransition]:
    """The newest transitions first."""
    query = select(HealthTransition).order_by(col(HealthTransition.seq).desc()).limit(limit)
    if since is not None:
        query = query.where(col(HealthTransition.at) >= since)
    return list(session.exec(query).all())


def prune_health(session: Session, *, before: datetime) -> int:
    """Forget results and slot claims older than ``before`` (transitions are kept: they are the history)."""
    gone = rowcount(session.execute(sa.delete(HealthResult).where(col(HealthResult.at) < before)))
    session.execute(sa.delete(HealthSlot).where(col(HealthSlot.claimed_at) < before))
    return gone
