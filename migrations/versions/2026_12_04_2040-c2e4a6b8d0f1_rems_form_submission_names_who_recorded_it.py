"""a REMS form submission names who recorded it

The Spravato REMS patient monitoring form's submission is recorded back on the esketamine session (issue #23,
part 4): `rems_form_submitted_at` already held when; this adds who recorded it (the signed-in clinician's token
subject), empty when the EHR sent the time.

Revision ID: c2e4a6b8d0f1
Revises: c8e2a4f6b1d3
Create Date: 2026-12-04 20:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'c2e4a6b8d0f1'
down_revision: str | None = 'c8e2a4f6b1d3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('ketamine_administrations', sa.Column('rems_form_submitted_by', sa.String(length=255), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would drop and recreate the table others reference.
    op.drop_column('ketamine_administrations', 'rems_form_submitted_by')
