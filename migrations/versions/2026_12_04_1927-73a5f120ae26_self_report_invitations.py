"""self report invitations

Patient self-report (issue #22): invitations (one single-use link each, its token stored as a sha256 and sealed
for the delivery channels), the patient-message outbox the channels read (self_report_messages), and each
hospital's self-report settings (crisis wording, whether staff will call, link lifetime).

Revision ID: 73a5f120ae26
Revises: 73a2f6d6a02d
Create Date: 2026-12-04 19:27:18.006437+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '73a5f120ae26'
down_revision: str | None = '73a2f6d6a02d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('self_report_invitations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('enrollment_id', sa.String(length=36), nullable=True),
    sa.Column('instrument', sa.String(length=32), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('sealed_token', sa.String(length=512), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('sent_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('response_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_self_report_invitations_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_self_report_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_self_report_invitations_token_hash'))
    )
    with op.batch_alter_table('self_report_invitations', schema=None) as batch_op:
        batch_op.create_index('ix_self_report_invitations_due', ['tenant_id', 'patient_id', 'instrument', 'due_date'], unique=False)
        batch_op.create_index('ix_self_report_invitations_open', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_self_report_invitations_patient', ['tenant_id', 'patient_id', 'created_at'], unique=False)

    op.create_table('self_report_settings',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('crisis_text', sa.String(length=2000), nullable=True),
    sa.Column('staff_will_call', sa.Boolean(), nullable=False),
    sa.Column('link_valid_days', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_self_report_settings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_self_report_settings'))
    )
    op.create_table('self_report_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('invitation_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invitation_id'], ['self_report_invitations.id'], name=op.f('fk_self_report_messages_invitation_id_self_report_invitations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_self_report_messages_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_self_report_messages'))
    )
    with op.batch_alter_table('self_report_messages', schema=None) as batch_op:
        batch_op.create_index('ix_self_report_messages_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_self_report_messages_invitation', ['invitation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('self_report_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_self_report_messages_invitation')
        batch_op.drop_index('ix_self_report_messages_due')

    op.drop_table('self_report_messages')
    op.drop_table('self_report_settings')
    with op.batch_alter_table('self_report_invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_self_report_invitations_patient')
        batch_op.drop_index('ix_self_report_invitations_open')
        batch_op.drop_index('ix_self_report_invitations_due')

    op.drop_table('self_report_invitations')
