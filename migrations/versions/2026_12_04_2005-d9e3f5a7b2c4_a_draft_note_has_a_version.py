"""a draft note has a version

A change to a draft note (its text, its signing) names the version it was made to (If-Match), as every record's
change does: the author's second tab or device must not overwrite or sign what they have not seen. Existing notes
start at version 1.

Revision ID: d9e3f5a7b2c4
Revises: c4d8e2a6f1b3
Create Date: 2026-12-04 20:05:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'd9e3f5a7b2c4'
down_revision: str | None = 'c4d8e2a6f1b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('patient_notes') as batch:
        batch.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('patient_notes') as batch:
        batch.drop_column('version')
