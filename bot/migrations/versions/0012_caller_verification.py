"""A request records how its caller was verified (method, state, who and when) and holds a verification in
progress: a one-time code only sealed, its expiry and wrong tries, or a Duo push's transaction id. Existing
requests get ``verification = 'none'`` and no tries: they were made before verification existed."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verification', sa.String(length=16), nullable=False, server_default='none'))
        batch_op.add_column(sa.Column('verify_method', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verified_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('verify_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verify_tries', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('verify_sealed', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('verify_txid', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        for column in ('verify_txid', 'verify_sealed', 'verify_tries', 'verify_expires_at', 'verified_by',
                       'verified_at', 'verify_method', 'verification'):
            batch_op.drop_column(column)
