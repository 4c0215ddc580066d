"""What the store modules share: actions run after a commit (never after a rollback, so a metric counts only
what the database really holds) and the row count of an UPDATE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event, orm
from sqlmodel import Session

log = logging.getLogger(__name__)

_AFTER_COMMIT = "resetbot_after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's transaction commits; never if it rolls back (so a metric counts only
    what the database really holds)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@event.listens_for(orm.Session, "after_commit")
def _run_after_commit(session: orm.Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, []):
        try:
            action()
        except Exception:  # a metric must never fail a committed change
            log.exception("after-commit action failed")


@event.listens_for(orm.Session, "after_soft_rollback")
def _drop_after_commit(session: orm.Session, previous_transaction: orm.SessionTransaction) -> None:
    session.info.pop(_AFTER_COMMIT, None)


# --- helpers --------------------------------------------------------------------------------------------------


def rowcount(result: sa.Result[Any]) -> int:
    """Rows an UPDATE matched (``session.execute`` types its answer as the general ``Result``)."""
    return cast("sa.CursorResult[Any]", result).rowcount


def opt_str(value: object) -> str | None:
    return None if value is None else str(value)
