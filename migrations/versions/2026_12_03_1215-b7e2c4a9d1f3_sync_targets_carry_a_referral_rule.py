"""sync targets carry a referral rule

A referral (ServiceRequest) pulled from an EHR enrols the patient; when it does not name its protocol, the target's
rule chooses one: the site's order code, else the programme's default (issue #19, item 5). Existing targets get an
empty rule: a referral that names no protocol is refused, as before nothing was pulled.

Revision ID: b7e2c4a9d1f3
Revises: a3c5e7f9b2d4
Create Date: 2026-12-03 12:15:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'b7e2c4a9d1f3'
down_revision: str | None = 'a3c5e7f9b2d4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('sync_targets', sa.Column('referrals', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would drop and recreate sync_targets, which other tables'
    # foreign keys reference.
    op.drop_column('sync_targets', 'referrals')
