"""Indexes for the abuse limits, which every ``/reset`` reads under the intake lock (so a slow read would queue every
replica's intake behind it): the requests of the last hour (``created_at``), a target's open requests and recent
resets (``target_entra_id``), and a limit's last alert in the audit trail (``action``). Only indexes: no data moves."""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_action'), ['action'], unique=False)

    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reset_request_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reset_request_target_entra_id'), ['target_entra_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reset_request_target_entra_id'))
        batch_op.drop_index(batch_op.f('ix_reset_request_created_at'))

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_action'))
