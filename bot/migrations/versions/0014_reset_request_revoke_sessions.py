"""A request may ask to revoke the target's sign-in sessions once the reset is made (``/reset … --revoke-sessions``,
for an account the caller says was compromised): the reset, which may run long after the request, must know.
Not null with a false default: a request an older release made asked for no revocation."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoke_sessions', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.drop_column('revoke_sessions')
