"""At most one browser sign-in waiting per person (and one for the service identity): a partial unique index on
``(slack_user, service)`` where ``used_at IS NULL``. A newer ``/resetbot login --browser`` retires the older link,
but two started at once on PostgreSQL each missed the other's uncommitted row and both links stayed good
(``bot.store.links.save_browser_sign_in`` retries against the index). Sign-ins such a race left waiting are used up
first, all but the newest of each person: the one whose link was sent last."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING = sa.text("used_at IS NULL")


def upgrade() -> None:
    op.execute(
        "UPDATE browser_sign_in SET used_at = created_at WHERE used_at IS NULL AND EXISTS ("
        " SELECT 1 FROM browser_sign_in AS newer WHERE newer.slack_user = browser_sign_in.slack_user"
        " AND newer.service = browser_sign_in.service AND newer.used_at IS NULL"
        " AND (newer.created_at > browser_sign_in.created_at OR (newer.created_at = browser_sign_in.created_at"
        " AND newer.state_hash > browser_sign_in.state_hash)))")
    op.create_index('uq_browser_sign_in_waiting', 'browser_sign_in', ['slack_user', 'service'], unique=True,
                    sqlite_where=_WAITING, postgresql_where=_WAITING)


def downgrade() -> None:
    op.drop_index('uq_browser_sign_in_waiting', table_name='browser_sign_in')
