"""sync quarantine: pulled resources Tandem refused, kept with the refusal and the raw resource

A pull moves its cursor past what it took in; a resource the intake refused was dropped for good (issue #19,
item 8). It is now kept per target, with its reason, until a retry after a code-map change (or on demand) takes it.

Revision ID: c4d2e8f1a9b7
Revises: f1313e87ec58
Create Date: 2026-12-03 13:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'c4d2e8f1a9b7'
down_revision: str | None = 'f1313e87ec58'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sync_quarantine',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('target_id', sa.String(length=36), nullable=False),
        sa.Column('resource_type', sa.String(length=64), nullable=False),
        sa.Column('remote_id', sa.String(length=64), nullable=False),
        sa.Column('element', sa.String(length=512), nullable=False),
        sa.Column('reason', sa.String(length=2000), nullable=False),
        sa.Column('resource', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('record_id', sa.String(length=36), nullable=True),
        sa.Column('code_map_digest', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['target_id'], ['sync_targets.id'], name=op.f('fk_sync_quarantine_target_id_sync_targets')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sync_quarantine_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_quarantine')),
        sa.UniqueConstraint('target_id', 'resource_type', 'remote_id', name=op.f('uq_sync_quarantine_target_id_resource_type_remote_id')),
    )
    op.create_index('ix_sync_quarantine_state', 'sync_quarantine', ['tenant_id', 'target_id', 'state'])


def downgrade() -> None:
    op.drop_index('ix_sync_quarantine_state', table_name='sync_quarantine')
    op.drop_table('sync_quarantine')
