"""patients carry notes

Notes the care team writes on a patient (issue #21, item 3): a draft its author edits, frozen once signed,
corrected by a note that amends it (amends_id), the original kept.

Revision ID: 73a2f6d6a02d
Revises: a3c5e7f9b1d2
Create Date: 2026-12-04 02:23:01.715661+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '73a2f6d6a02d'
down_revision: str | None = 'a3c5e7f9b1d2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('patient_notes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('author', sa.String(length=255), nullable=False),
    sa.Column('author_role', sa.String(length=32), nullable=False),
    sa.Column('text', sa.String(length=4000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amends_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['amends_id'], ['patient_notes.id'], name=op.f('fk_patient_notes_amends_id_patient_notes')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_patient_notes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_notes'))
    )
    with op.batch_alter_table('patient_notes', schema=None) as batch_op:
        batch_op.create_index('ix_patient_notes_patient', ['tenant_id', 'patient_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('patient_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_notes_patient')

    op.drop_table('patient_notes')
