"""At most one browser sign-in waiting per person, and one for the service identity whoever started it (any approver
may): partial unique indexes on ``slack_user`` (a person's own, ``NOT service``) and on ``service`` (the service
identity's) where ``used_at IS NULL``. A newer ``/resetbot login --browser`` retires the older link, but two started
at once on PostgreSQL each missed the other's uncommitted row and both links stayed good, and a service-identity link
one approver left waiting stayed good after another approver's newer one (``bot.store.links.save_browser_sign_in``
retries against the indexes). Sign-ins left waiting that way are used up first, all but the newest of each: the one
whose link was sent last."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PERSON = sa.text("used_at IS NULL AND NOT service")
_SERVICE = sa.text("used_at IS NULL AND service")
#: Sign-ins waiting although another one for the same (a person's own, or the service identity's) was sent later.
_SUPERSEDED = (
    "UPDATE browser_sign_in SET used_at = created_at WHERE used_at IS NULL AND EXISTS ("
    " SELECT 1 FROM browser_sign_in AS newer WHERE newer.used_at IS NULL"
    " AND newer.service = browser_sign_in.service"
    " AND (browser_sign_in.service OR newer.slack_user = browser_sign_in.slack_user)"
    " AND (newer.created_at > browser_sign_in.created_at OR (newer.created_at = browser_sign_in.created_at"
    " AND newer.state_hash > browser_sign_in.state_hash)))")


def upgrade() -> None:
    op.execute(_SUPERSEDED)
    op.create_index('uq_browser_sign_in_waiting', 'browser_sign_in', ['slack_user'], unique=True,
                    sqlite_where=_PERSON, postgresql_where=_PERSON)
    op.create_index('uq_browser_sign_in_service_waiting', 'browser_sign_in', ['service'], unique=True,
                    sqlite_where=_SERVICE, postgresql_where=_SERVICE)


def downgrade() -> None:
    op.drop_index('uq_browser_sign_in_service_waiting', table_name='browser_sign_in')
    op.drop_index('uq_browser_sign_in_waiting', table_name='browser_sign_in')
