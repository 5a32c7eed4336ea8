"""recompute statuses for what happened alone and the missed measurements

A reason now carries what happened alone (`what_happened`), which the patient page shows under "Closed by … on …
(zone)" for a closed reason, and an overdue measurement lists each slot it missed (`next_due.measurement.missed`),
which the score chart marks; outcome messages lost their jargon (issue #21, items 4 and 6). Data only: every stored
status becomes due for recompute now, so the next sweep stores it again. Downgrading strips both fields from stored
statuses, which the old models would refuse as unknown.

Revision ID: a1d5e7c9b3f2
Revises: ff6277576689
Create Date: 2026-12-04 02:30:00+00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision: str = 'a1d5e7c9b3f2'
down_revision: str | None = 'ff6277576689'
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


def _strip(detail: dict) -> bool:
    changed = False
    for reason in detail.get('reasons') or []:
        changed |= reason.pop('what_happened', None) is not None
    for due in (detail.get('next_due') or {}).values():
        if isinstance(due, dict) and 'missed' in due:
            due.pop('missed')
            changed = True
    return changed


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(STATUSES.c.tenant_id, STATUSES.c.enrollment_id, STATUSES.c.detail)).all()
    for tenant_id, enrollment_id, detail in rows:
        if not detail or not _strip(detail):
            continue
        bind.execute(
            sa.update(STATUSES)
            .where(STATUSES.c.tenant_id == tenant_id, STATUSES.c.enrollment_id == enrollment_id)
            .values(detail=detail)
        )
