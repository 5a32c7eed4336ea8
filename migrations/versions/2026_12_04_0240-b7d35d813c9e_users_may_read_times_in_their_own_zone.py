"""users may read times in their own zone

A user (a token subject of a tenant) may set their own IANA zone on the pages, overriding the hospital's for what
they read (issue #21, item 4); without one they read the hospital's zone, as before.

Revision ID: b7d35d813c9e
Revises: a1d5e7c9b3f2
Create Date: 2026-12-04 02:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'b7d35d813c9e'
down_revision: str | None = 'a1d5e7c9b3f2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'user_time_zones',
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('time_zone', sa.String(length=64), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_user_time_zones_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', 'subject', name=op.f('pk_user_time_zones')),
    )


def downgrade() -> None:
    op.drop_table('user_time_zones')
