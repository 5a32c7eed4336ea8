"""recompute statuses an enrollment state may hide

An open urgent finding now makes a plan at_risk whatever the enrollment's state (CLINICAL.md section 4; issue #21):
a stored on_hold, completed or discontinued status may be hiding one. Data only: those rows become due for
recompute now, so the next sweep (`tandem status sweep` or TANDEM_STATUS_SWEEP_SECONDS) stores them again under
the new rule. Downgrading leaves them as recomputed.

Revision ID: 5e0a7d1c9b42
Revises: b46015e5695a
Create Date: 2026-12-02 08:10:00+00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision: str = '5e0a7d1c9b42'
down_revision: str | None = 'b46015e5695a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = sa.table('plan_statuses', sa.column('status', sa.String), sa.column('next_recompute_at', sa.DateTime(timezone=True)))


def upgrade() -> None:
    op.get_bind().execute(
        sa.update(STATUSES)
        .where(STATUSES.c.status.in_(['on_hold', 'completed', 'discontinued']))
        .values(next_recompute_at=datetime.now(UTC))
    )


def downgrade() -> None:
    pass
