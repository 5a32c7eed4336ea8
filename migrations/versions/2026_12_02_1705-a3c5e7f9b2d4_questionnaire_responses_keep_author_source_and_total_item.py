"""questionnaire responses keep author, source and the total item as sent

A QuestionnaireResponse is read back with the author and source its sender wrote (a clinician-rated scale stays
clinician-rated) and with its total in the item it was sent in (issue #17, item 2). Existing rows have none: they
are served as before, from author_kind.

Revision ID: a3c5e7f9b2d4
Revises: 4f8a6c2d9e17
Create Date: 2026-12-02 17:05:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'a3c5e7f9b2d4'
down_revision: str | None = '4f8a6c2d9e17'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ('author', 'answered_by', 'sent_total_item')


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column('questionnaire_responses', sa.Column(name, sa.JSON(), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would drop and recreate a table others' foreign keys name.
    for name in reversed(_COLUMNS):
        op.drop_column('questionnaire_responses', name)
