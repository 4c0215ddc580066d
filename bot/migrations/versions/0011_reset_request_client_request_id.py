"""A request remembers its reset's Graph ``client-request-id``, written with the AD baseline in the transaction
that moves it to ``resetting``: a bot killed after that commit but before Graph's operation was stored left
recovery nothing to go on ("unknown"); now recovery compares the account in AD with the baseline, and the
``client-request-id`` names the call it is about. Nullable: a request an older release started has none, and is
recovered as before."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_request_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.drop_column('client_request_id')
