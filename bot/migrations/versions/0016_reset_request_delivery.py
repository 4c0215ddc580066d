"""Who may reveal a request's temporary password (``RESETBOT_DELIVERY``: ``agent`` or ``target``) is stored with the
request when it is made, and the reveal goes by it: read at reveal time, a change of the setting between approval and
reveal changed who could read the password (from ``target`` to ``agent``, the agent read a password promised only to
its owner). Nullable, no default: a request an older release made has no record of it, and keeps following the
setting as it did."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.drop_column('delivery')
