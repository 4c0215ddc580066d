"""The initial schema: requests, approvals, the audit chain, sealed secrets and linked Entra accounts.

Exactly what ``SQLModel.metadata.create_all`` made before migrations existed; ``bot.schema.upgrade`` stamps a
database made that way at this revision instead of creating its tables again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('agent_link',
    sa.Column('slack_user', sa.String(length=64), nullable=False),
    sa.Column('upn', sa.String(length=320), nullable=False),
    sa.Column('oid', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('home_account_id', sa.String(length=255), nullable=False),
    sa.Column('encrypted_cache', sa.Text(), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('roles', sa.Text(), nullable=True),
    sa.Column('roles_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('slack_user', name=op.f('pk_agent_link'))
    )
    op.create_table('audit_event',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('request_id', sa.String(length=16), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('from_state', sa.String(length=32), nullable=True),
    sa.Column('to_state', sa.String(length=32), nullable=True),
    sa.Column('correlation_id', sa.String(length=64), nullable=True),
    sa.Column('graph_operation_id', sa.String(length=255), nullable=True),
    sa.Column('verdict', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_event')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_event_hash'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_request_id'), ['request_id'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('reset_request',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('requester', sa.String(length=32), nullable=False),
    sa.Column('requester_display', sa.String(length=255), nullable=False),
    sa.Column('target_entra_id', sa.String(length=64), nullable=False),
    sa.Column('target_upn', sa.String(length=320), nullable=False),
    sa.Column('target_sam', sa.String(length=64), nullable=True),
    sa.Column('target_dn', sa.String(length=1024), nullable=True),
    sa.Column('target_display', sa.String(length=255), nullable=False),
    sa.Column('source_key', sa.String(length=255), nullable=True),
    sa.Column('target_slack_id', sa.String(length=32), nullable=True),
    sa.Column('manager_slack_id', sa.String(length=32), nullable=True),
    sa.Column('approver_group', sa.String(length=64), nullable=True),
    sa.Column('protected', sa.String(length=128), nullable=False),
    sa.Column('confirmation', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('unlock', sa.Boolean(), nullable=False),
    sa.Column('tap', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('previous_state', sa.String(length=32), nullable=True),
    sa.Column('approvals_required', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.String(length=32), nullable=True),
    sa.Column('thread_ts', sa.String(length=32), nullable=True),
    sa.Column('escalate_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('graph_operation_id', sa.String(length=255), nullable=True),
    sa.Column('verdict', sa.String(length=64), nullable=True),
    sa.CheckConstraint('approvals_required BETWEEN 1 AND 2', name=op.f('ck_reset_request_approvals_required')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_reset_request_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reset_request')),
    sa.UniqueConstraint('source_key', name=op.f('uq_reset_request_source_key'))
    )
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reset_request_requester'), ['requester'], unique=False)
        batch_op.create_index(batch_op.f('ix_reset_request_state_expires_at'), ['state', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reset_request_target_upn'), ['target_upn'], unique=False)

    op.create_table('approval',
    sa.Column('request_id', sa.String(length=16), nullable=False),
    sa.Column('approver', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['reset_request.id'], name=op.f('fk_approval_request_id_reset_request')),
    sa.PrimaryKeyConstraint('request_id', 'approver', name=op.f('pk_approval'))
    )
    op.create_table('sealed_secret',
    sa.Column('request_id', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ciphertext', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['reset_request.id'],
                            name=op.f('fk_sealed_secret_request_id_reset_request')),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_sealed_secret'))
    )
    with op.batch_alter_table('sealed_secret', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sealed_secret_expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sealed_secret', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sealed_secret_expires_at'))

    op.drop_table('sealed_secret')
    op.drop_table('approval')
    with op.batch_alter_table('reset_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reset_request_target_upn'))
        batch_op.drop_index(batch_op.f('ix_reset_request_state_expires_at'))
        batch_op.drop_index(batch_op.f('ix_reset_request_requester'))

    op.drop_table('reset_request')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_request_id'))

    op.drop_table('audit_event')
    op.drop_table('agent_link')
