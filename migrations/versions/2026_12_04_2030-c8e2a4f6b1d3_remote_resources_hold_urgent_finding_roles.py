"""remote resources hold urgent finding roles

An urgent finding sent to an EHR (issue #20, part 3) is one resource per occurrence: its role in
sync_remote_resources is "message/<reason code>/<occurrence record id>" (its Flag's "<reason code>/<occurrence
record id>"), up to 78 characters; the column held 64.

Revision ID: c8e2a4f6b1d3
Revises: e557d56c9d0e
Create Date: 2026-12-04 20:15:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'c8e2a4f6b1d3'
down_revision: str | None = 'e557d56c9d0e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sync_remote_resources', schema=None) as batch_op:
        batch_op.alter_column('role', existing_type=sa.String(length=64), type_=sa.String(length=128), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('sync_remote_resources', schema=None) as batch_op:
        batch_op.alter_column('role', existing_type=sa.String(length=128), type_=sa.String(length=64), existing_nullable=False)
