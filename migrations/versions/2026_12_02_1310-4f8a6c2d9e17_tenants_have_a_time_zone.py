"""tenants have a time zone

A tenant's IANA zone places "today" and the day of a dose in the plan status and shows every time on the pages in
the hospital's local time (issue #21, item 4). Existing tenants stay on UTC, as before: an operator sets the zone
with `tandem tenant set-zone`, which makes the tenant's statuses due for recompute.

Revision ID: 4f8a6c2d9e17
Revises: 9d4b2e7a1c63
Create Date: 2026-12-02 13:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '4f8a6c2d9e17'
down_revision: str | None = '9d4b2e7a1c63'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('tenants', sa.Column('time_zone', sa.String(length=64), nullable=False, server_default='UTC'))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would drop and recreate tenants, which other tables'
    # foreign keys reference.
    op.drop_column('tenants', 'time_zone')
