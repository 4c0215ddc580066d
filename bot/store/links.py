"""Agents' linked Entra accounts: the encrypted token cache, the roles last read, unlinking; and browser sign-ins
waiting for their callback."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.models import (
    AgentLink,
    BrowserSignIn,
    utcnow,
)
from bot.store.shared import rowcount


def get_link(session: Session, *, slack_user: str) -> AgentLink | None:
    """The Entra account linked to ``slack_user`` (or to the service identity's reserved key), if any."""
    return session.get(AgentLink, slack_user, populate_existing=True)


def save_link(
    session: Session,
    *,
    slack_user: str,
    upn: str,
    oid: str,
    home_account_id: str,
    encrypted_cache: str,
    display_name: str = "",
    roles: Collection[str] | None = None,
    at: datetime | None = None,
) -> AgentLink:
    """Link ``slack_user`` to an Entra account, replacing any earlier link (one INSERT ... ON CONFLICT DO UPDATE,
    so two replicas finishing a sign-in at once leave one row). ``encrypted_cache`` must already be encrypted."""
    when = at or utcnow()
    values: dict[str, Any] = {
        "slack_user": slack_user, "upn": upn, "oid": oid, "display_name": display_name,
        "home_account_id": home_account_id, "encrypted_cache": encrypted_cache, "linked_at": when,
        "refreshed_at": None, "roles": _roles_json(roles), "roles_checked_at": when if roles is not None else None,
    }
    changes = {k: v for k, v in values.items() if k != "slack_user"}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 (lazy: see bot.store's doc)
        session.execute(postgresql.insert(AgentLink).values(values).on_conflict_do_update(
            index_elements=["slack_user"], set_=changes))
    elif dialect == "sqlite":
        session.execute(sqlite.insert(AgentLink).values(values).on_conflict_do_update(
            index_elements=["slack_user"], set_=changes))
    else:  # pragma: no cover - only the two dialects are supported
        session.merge(AgentLink(**values))
        session.flush()
    link = get_link(session, slack_user=slack_user)
    assert link is not None
    return link


def replace_link_cache(session: Session, *, slack_user: str, expected: str, encrypted_cache: str,
                       at: datetime | None = None) -> bool:
    """Store a refreshed cache, only if the row still holds ``expected`` (compare-and-set): a link replaced or
    removed meanwhile (a new sign-in, a logout) is never overwritten by a refresh of the old one."""
    result = session.execute(
        sa.update(AgentLink)
        .where(col(AgentLink.slack_user) == slack_user, col(AgentLink.encrypted_cache) == expected)
        .values(encrypted_cache=encrypted_cache, refreshed_at=at or utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def set_link_roles(session: Session, *, slack_user: str, oid: str, roles: Collection[str],
                   at: datetime | None = None) -> bool:
    """Record the Entra roles just read for the account ``oid`` linked to ``slack_user`` (not if it changed)."""
    result = session.execute(
        sa.update(AgentLink)
        .where(col(AgentLink.slack_user) == slack_user, col(AgentLink.oid) == oid)
        .values(roles=_roles_json(roles), roles_checked_at=at or utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def delete_link(session: Session, *, slack_user: str) -> AgentLink | None:
    """Remove the link and its encrypted cache; the removed row (detached), or None if there was none."""
    link = session.get(AgentLink, slack_user, with_for_update=True)
    if link is None:
        return None
    session.delete(link)
    session.flush()
    return link


def link_roles(link: AgentLink) -> list[str] | None:
    """The roles recorded on a link, or None when they were never read."""
    if link.roles is None:
        return None
    value = json.loads(link.roles)
    return [str(r) for r in value] if isinstance(value, list) else None


def _roles_json(roles: Collection[str] | None) -> str | None:
    return None if roles is None else json.dumps(sorted(set(roles)))


# --- browser sign-ins waiting for their callback ---------------------------------------------------------------
class SignInClaim(StrEnum):
    """What claiming a browser sign-in's ``state`` found."""

    CLAIMED = "claimed"  # this call used it: go on
    UNKNOWN = "unknown"  # no such state (never issued here, or purged long ago)
    USED = "used"  # used before (a replayed callback, a reload, another replica's)
    EXPIRED = "expired"  # issued, but its time ran out (now used up as well)


#: Tries of ``save_browser_sign_in``: a try fails only because another sign-in of the same person committed
#: meanwhile (it waits for that commit), so each failure is someone's progress; more than anyone starts at once.
_SAVE_ATTEMPTS = 32


def save_browser_sign_in(session: Session, *, state_hash: str, slack_user: str, service: bool,
                         correlation_id: str, encrypted_flow: str, created_at: datetime,
                         expires_at: datetime) -> None:
    """Remember a browser sign-in until its callback, as the only one waiting for the person (or for the service
    identity, whoever started it): those still waiting are used up first (``retire_browser_sign_ins``).
    ``encrypted_flow`` must already be encrypted.

    Two sign-ins of one person started at once (two clicks, two replicas) each retire what they can see; on
    PostgreSQL neither sees the other's uncommitted row, and both links stayed good. The partial unique indexes
    (``uq_browser_sign_in_waiting``, ``uq_browser_sign_in_service_waiting``) make the later insert wait for the
    earlier commit and fail; it is then retried
    in a savepoint, whose retire now sees the committed one and uses it up: the later link is the one that works,
    as when they come one after the other. (SQLite takes its one write lock at ``BEGIN``: they never overlap.)"""
    for attempt in range(_SAVE_ATTEMPTS):
        retire_browser_sign_ins(session, slack_user=slack_user, service=service, at=created_at)
        try:
            with session.begin_nested():
                session.add(BrowserSignIn(state_hash=state_hash, slack_user=slack_user, service=service,
                                          correlation_id=correlation_id, encrypted_flow=encrypted_flow,
                                          created_at=created_at, expires_at=expires_at))
            return
        except IntegrityError:
            if attempt == _SAVE_ATTEMPTS - 1 or session.get(BrowserSignIn, state_hash) is not None:
                raise  # not the person's other sign-in: a state used twice, which must never be saved


def claim_browser_sign_in(session: Session, *, state_hash: str, at: datetime
                          ) -> tuple[SignInClaim, BrowserSignIn | None]:
    """Use a browser sign-in's state once: one conditional UPDATE (``used_at IS NULL``), so of two callbacks with
    the same state (a reload, a replay, two replicas) exactly one gets CLAIMED. An expired one is used up too."""
    row = session.get(BrowserSignIn, state_hash, populate_existing=True)
    if row is None:
        return SignInClaim.UNKNOWN, None
    won = rowcount(session.execute(
        sa.update(BrowserSignIn)
        .where(col(BrowserSignIn.state_hash) == state_hash, col(BrowserSignIn.used_at).is_(None))
        .values(used_at=at))) == 1
    if not won:
        return SignInClaim.USED, row
    if row.expires_at <= at:
        return SignInClaim.EXPIRED, row
    return SignInClaim.CLAIMED, row


def retire_browser_sign_ins(session: Session, *, slack_user: str, service: bool, at: datetime) -> int:
    """Use up ``slack_user``'s own sign-ins still waiting, or with ``service`` the service identity's whoever
    started them (it is one account, and any approver may link it): a newer link replaces them, so only the latest
    one DMed can link anything."""
    mine = (col(BrowserSignIn.service).is_(True) if service
            else sa.and_(col(BrowserSignIn.slack_user) == slack_user, col(BrowserSignIn.service).is_(False)))
    return rowcount(session.execute(
        sa.update(BrowserSignIn).where(mine, col(BrowserSignIn.used_at).is_(None)).values(used_at=at)))


def purge_browser_sign_ins(session: Session, *, before: datetime) -> int:
    """Forget sign-ins that expired before ``before`` (kept a while after, so a late replay is told "used")."""
    return rowcount(session.execute(sa.delete(BrowserSignIn).where(col(BrowserSignIn.expires_at) < before)))


def first_refusal(session: Session, *, state_hash: str, at: datetime) -> bool:
    """True the first time a callback with this (known) state is refused: one conditional UPDATE
    (``refused_at IS NULL``), so of many replays, even on several replicas, exactly one is audited and DMed."""
    return rowcount(session.execute(
        sa.update(BrowserSignIn)
        .where(col(BrowserSignIn.state_hash) == state_hash, col(BrowserSignIn.refused_at).is_(None))
        .values(refused_at=at))) == 1


#: Who a callback with a state never issued is put down to (nobody known sent it).
UNKNOWN_CALLER = "unknown"


def first_unknown_in_minute(session: Session, *, at: datetime) -> bool:
    """True for the first callback with a never-issued state in ``at``'s minute (across replicas): such callbacks
    are audited at most once a minute, because anyone who reaches the callback can send them.

    Counted with a marker row per minute in ``browser_sign_in`` (INSERT ... ON CONFLICT DO NOTHING on its key,
    ``unknown:<minute>``, which no SHA-256 state hash can equal), already used, so nothing can claim it, and
    purged with the expired sign-ins."""
    minute = at.replace(second=0, microsecond=0)
    marker = f"unknown:{minute:%Y-%m-%dT%H:%M}"
    if session.get(BrowserSignIn, marker) is not None:  # the usual case in a flood: a read, no insert tried
        return False
    values: dict[str, Any] = {
        "state_hash": marker, "slack_user": UNKNOWN_CALLER, "service": False,
        "correlation_id": "", "encrypted_flow": "", "created_at": at, "expires_at": at, "used_at": at,
        "refused_at": at,
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 (lazy: see bot.store's doc)
        statement: Any = postgresql.insert(BrowserSignIn).values(values).on_conflict_do_nothing(
            index_elements=["state_hash"])
    elif dialect == "sqlite":
        statement = sqlite.insert(BrowserSignIn).values(values).on_conflict_do_nothing(
            index_elements=["state_hash"])
    else:  # pragma: no cover - only the two dialects are supported
        session.add(BrowserSignIn(**values))
        session.flush()
        return True
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT through the ORM session.
    return session.execute(statement.returning(col(BrowserSignIn.state_hash))).first() is not None
