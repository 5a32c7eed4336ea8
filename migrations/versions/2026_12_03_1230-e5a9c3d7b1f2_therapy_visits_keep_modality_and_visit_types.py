"""therapy visits keep their modality and the EHR's visit types

An Encounter typed only with a psychotherapy code (CPT 90832/90834/90837/90853, SNOMED CT 75516001/18512000) is
kept as a session whose modality is "psychotherapy-unspecified" instead of being refused as "not a CBT session",
and Encounter.type is kept as sent, so it is served back unchanged (issue #19, item 3). Every existing row was
accepted only with a CBT code, so it is "cbt"; its visit types are empty and it is served as before.

Revision ID: e5a9c3d7b1f2
Revises: b6d2f8a4c1e9
Create Date: 2026-12-03 12:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'e5a9c3d7b1f2'
down_revision: str | None = 'b6d2f8a4c1e9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'cbt_sessions',
        sa.Column('modality', sa.String(length=32), nullable=False, server_default='cbt'),
    )
    op.add_column('cbt_sessions', sa.Column('visit_types', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would drop and recreate a table others' foreign keys name.
    op.drop_column('cbt_sessions', 'visit_types')
    op.drop_column('cbt_sessions', 'modality')
