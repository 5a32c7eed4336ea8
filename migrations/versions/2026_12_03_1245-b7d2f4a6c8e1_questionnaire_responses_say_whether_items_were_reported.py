"""questionnaire responses say whether their items were reported

A total sent without its items (an EHR flowsheet row, a total-score Observation) now counts as the score and is
marked "items not reported", so its PHQ-9 item 9 is unknown, not 0 (issue #19, item 1). Existing rows were all
scored from their items: true.

Revision ID: b7d2f4a6c8e1
Revises: e5a9c3d7b1f2
Create Date: 2026-12-03 12:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'b7d2f4a6c8e1'
down_revision: str | None = 'e5a9c3d7b1f2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'questionnaire_responses',
        sa.Column('items_reported', sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+), as the other column migrations of this table.
    op.drop_column('questionnaire_responses', 'items_reported')
