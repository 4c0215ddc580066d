"""A sealed temporary password is claimed by a Reveal click and spent only once Slack has opened the modal that
shows it: it used to be deleted first, so an expired trigger_id or a replica that could not decrypt it lost the
password while the trail said it was shown. Nullable: a row an older release wrote is simply unclaimed."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sealed_secret', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sealed_secret', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
