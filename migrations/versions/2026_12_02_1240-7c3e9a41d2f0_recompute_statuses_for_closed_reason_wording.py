"""recompute statuses for the new reason wording

A reason now carries its next step separately (`next_step`), and a closed reason reads as closed — who
acknowledged it and when — instead of still asking for "contact the patient today" (issue #21, item 6). Data only:
every stored status becomes due for recompute now, so the next sweep (`tandem status sweep` or
TANDEM_STATUS_SWEEP_SECONDS) stores it again in the new words. Downgrading removes `next_step` from stored
statuses, which the old code would refuse as an unknown field; their messages keep the new words.

Revision ID: 7c3e9a41d2f0
Revises: 5e0a7d1c9b42
Create Date: 2026-12-02 12:40:00+00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision: str = '7c3e9a41d2f0'
down_revision: str | None = '5e0a7d1c9b42'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = sa.table(
    'plan_statuses',
    sa.column('tenant_id', sa.String),
    sa.column('enrollment_id', sa.String),
    sa.column('next_recompute_at', sa.DateTime(timezone=True)),
    sa.column('detail', sa.JSON),
)


def upgrade() -> None:
    op.get_bind().execute(sa.update(STATUSES).values(next_recompute_at=datetime.now(UTC)))


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(STATUSES.c.tenant_id, STATUSES.c.enrollment_id, STATUSES.c.detail)).all()
    for tenant_id, enrollment_id, detail in rows:
        reasons = (detail or {}).get('reasons') or []
        if not any('next_step' in reason for reason in reasons):
            continue
        for reason in reasons:
            reason.pop('next_step', None)
        bind.execute(
            sa.update(STATUSES)
            .where(STATUSES.c.tenant_id == tenant_id, STATUSES.c.enrollment_id == enrollment_id)
            .values(detail=detail)
        )
