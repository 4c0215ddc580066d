"""Browser sign-ins waiting for their callback (``/resetbot login --browser``): in the database, not in memory, so
that the replica Microsoft's redirect reaches can finish a sign-in another replica started, and a ``state`` is used
once across all of them."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('browser_sign_in',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('slack_user', sa.String(length=64), nullable=False),
    sa.Column('service', sa.Boolean(), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=False),
    sa.Column('encrypted_flow', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refused_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_browser_sign_in'))
    )
    with op.batch_alter_table('browser_sign_in', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_browser_sign_in_expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('browser_sign_in', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_browser_sign_in_expires_at'))

    op.drop_table('browser_sign_in')
