"""A request remembers its AD account's objectGUID: the reset found the account again by the DN stored with the
request, so a rename or move in between pointed the reset's reads and ``--unlock``'s write at whatever sat at that
DN by then. Nullable: a request an older release made has none and is found by its DN, as before."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('target_guid', sa.String(length=38), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.drop_column('target_guid')
