"""the coordinator's worklist: staff links (a signed-in user is a practitioner), each task's snooze, escalation
and completion, and outreach attempts (issue #21, part 1)

Revision ID: a3c5e7f9b1d2
Revises: ab7c73937393
Create Date: 2026-12-04 02:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a3c5e7f9b1d2'
down_revision: str | None = 'ab7c73937393'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'staff_links',
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('practitioner_id', sa.String(length=36), nullable=False),
        sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'subject', name=op.f('pk_staff_links')),
    )
    op.create_table(
        'worklist_task_states',
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('task_id', sa.String(length=64), nullable=False),
        sa.Column('enrollment_id', sa.String(length=36), nullable=False),
        sa.Column('patient_id', sa.String(length=36), nullable=False),
        sa.Column('snoozed_until', sa.Date(), nullable=True),
        sa.Column('snooze_reason', sa.String(length=1000), nullable=True),
        sa.Column('snoozed_by', sa.String(length=255), nullable=True),
        sa.Column('escalated_to', sa.String(length=36), nullable=True),
        sa.Column('escalation_note', sa.String(length=2000), nullable=True),
        sa.Column('escalated_by', sa.String(length=255), nullable=True),
        sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_by', sa.String(length=255), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'task_id', name=op.f('pk_worklist_task_states')),
    )
    op.create_index(
        'ix_worklist_task_states_escalated', 'worklist_task_states', ['tenant_id', 'escalated_to'], unique=False
    )
    op.create_table(
        'outreach_attempts',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('task_id', sa.String(length=64), nullable=False),
        sa.Column('patient_id', sa.String(length=36), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('note', sa.String(length=2000), nullable=False),
        sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempted_by', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_attempts')),
    )
    op.create_index('ix_outreach_attempts_task', 'outreach_attempts', ['tenant_id', 'task_id'], unique=False)
    op.create_index('ix_outreach_attempts_patient', 'outreach_attempts', ['tenant_id', 'patient_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outreach_attempts_patient', table_name='outreach_attempts')
    op.drop_index('ix_outreach_attempts_task', table_name='outreach_attempts')
    op.drop_table('outreach_attempts')
    op.drop_index('ix_worklist_task_states_escalated', table_name='worklist_task_states')
    op.drop_table('worklist_task_states')
    op.drop_table('staff_links')
