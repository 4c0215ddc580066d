"""A ``resetting`` request carries a lease (who holds it, until when), renewed while its reset runs: recovery used
to judge a reset abandoned by its age alone, and took one still retrying a throttled Graph for a stopped bot's,
marking it failed while Graph went on to set the password. Nullable: a request an older release left resetting
has no lease and is judged by its age, as before."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
