"""sync workers keep a heartbeat: one row per delivery worker process (id, host, pid, started, last beat, rows
claimed), so the admin page and a container health check tell live workers from dead ones (issue #24, part 3)

Revision ID: faf9b4145a57
Revises: c4d2e8f1a9b7
Create Date: 2026-12-04 01:19:04+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'faf9b4145a57'
down_revision: str | None = 'c4d2e8f1a9b7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sync_workers',
        sa.Column('id', sa.String(length=128), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_beat_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rows_claimed', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_workers')),
    )
    op.create_index('ix_sync_workers_last_beat', 'sync_workers', ['last_beat_at'])


def downgrade() -> None:
    op.drop_index('ix_sync_workers_last_beat', table_name='sync_workers')
    op.drop_table('sync_workers')
