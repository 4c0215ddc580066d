"""Outbox messages may carry Block Kit blocks: the reset's Reveal button and the target's "This wasn't me" DM are
written to the outbox with the verdict, so a Slack failure at that moment delays them instead of losing them.
Nullable: a plain-text message (every row an older release wrote) has none."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blocks', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('blocks')
