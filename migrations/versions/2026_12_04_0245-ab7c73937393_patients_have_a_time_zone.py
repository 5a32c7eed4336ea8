"""patients have a time zone

A coordinator calls a patient at a sensible hour of the patient's own day (issue #21, item 2): the patient's IANA
time zone (FHIR: the timezone extension), empty for the patients stored before it, who are shown the tenant's.

Revision ID: ab7c73937393
Revises: b7d35d813c9e
Create Date: 2026-12-04 02:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'ab7c73937393'
down_revision: str | None = 'b7d35d813c9e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('patients', sa.Column('time_zone', sa.String(length=64), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would drop and recreate patients, which other tables'
    # foreign keys reference.
    op.drop_column('patients', 'time_zone')
