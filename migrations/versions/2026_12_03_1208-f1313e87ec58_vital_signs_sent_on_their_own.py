"""vital signs sent on their own

Blood pressure, heart rate and SpO2 Observations an EHR sends outside a session record (issue #19, item 2): a row
per measurement, naming the ketamine session whose window held it, or none (pre-treatment screening).

Revision ID: f1313e87ec58
Revises: b7d2f4a8c6e1
Create Date: 2026-12-03 12:08:27.443980+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'f1313e87ec58'
down_revision: str | None = 'b7d2f4a8c6e1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('vital_signs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source_system', sa.String(length=255), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('ketamine_administration_id', sa.String(length=36), nullable=True),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('loinc', sa.String(length=16), nullable=False),
    sa.Column('measure', sa.String(length=16), nullable=False),
    sa.Column('systolic_mmhg', sa.Integer(), nullable=True),
    sa.Column('diastolic_mmhg', sa.Integer(), nullable=True),
    sa.Column('heart_rate_bpm', sa.Integer(), nullable=True),
    sa.Column('spo2_percent', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'ketamine_administration_id'], ['ketamine_administrations.tenant_id', 'ketamine_administrations.id'], name=op.f('fk_vital_signs_tenant_id_ketamine_administration_id_ketamine_administrations')),
    sa.ForeignKeyConstraint(['tenant_id', 'patient_id'], ['patients.tenant_id', 'patients.id'], name=op.f('fk_vital_signs_tenant_id_patient_id_patients')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_vital_signs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vital_signs')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_vital_signs_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'source_system', 'source_id', name=op.f('uq_vital_signs_tenant_id_source_system_source_id'))
    )
    with op.batch_alter_table('vital_signs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vital_signs_ketamine_administration_id'), ['ketamine_administration_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vital_signs_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vital_signs_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_vital_signs_taken_at'), ['taken_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_vital_signs_tenant_id'), ['tenant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('vital_signs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vital_signs_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_vital_signs_taken_at'))
        batch_op.drop_index(batch_op.f('ix_vital_signs_status'))
        batch_op.drop_index(batch_op.f('ix_vital_signs_patient_id'))
        batch_op.drop_index(batch_op.f('ix_vital_signs_ketamine_administration_id'))

    op.drop_table('vital_signs')
