"""EHRs registered to call the CDS Hooks service (issuer, keys, the sync target they are) and the JWT ids they
used, kept until each JWT expires so a replay is refused (issue #20, part 1)

Revision ID: c4d8e2a6f1b7
Revises: d9e3f5a7b2c4
Create Date: 2026-12-04 20:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c4d8e2a6f1b7'
down_revision: str | None = 'd9e3f5a7b2c4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'cds_clients',
        sa.Column('issuer', sa.String(length=1024), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('jwks_url', sa.String(length=1024), nullable=True),
        sa.Column('jwks', sa.JSON(), nullable=True),
        sa.Column('sync_target_id', sa.String(length=36), nullable=True),
        sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['sync_target_id'], ['sync_targets.id'], name=op.f('fk_cds_clients_sync_target_id_sync_targets')
        ),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_cds_clients_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('issuer', name=op.f('pk_cds_clients')),
    )
    op.create_index(op.f('ix_cds_clients_tenant_id'), 'cds_clients', ['tenant_id'], unique=False)
    op.create_table(
        'cds_jwt_seen',
        sa.Column('issuer', sa.String(length=1024), nullable=False),
        sa.Column('jti', sa.String(length=255), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('issuer', 'jti', name=op.f('pk_cds_jwt_seen')),
    )
    op.create_index('ix_cds_jwt_seen_expires_at', 'cds_jwt_seen', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cds_jwt_seen_expires_at', table_name='cds_jwt_seen')
    op.drop_table('cds_jwt_seen')
    op.drop_index(op.f('ix_cds_clients_tenant_id'), table_name='cds_clients')
    op.drop_table('cds_clients')
