"""search tokens carry their resource's patient and dates

fhir_search_tokens gains copies of its resource's current version's patient_id, clinical_date and last_updated,
and indexes (tenant, type, param, value, clinical_date | last_updated, resource_id): a search on one token
parameter is then an ordered range of one index that stops after the page (issue #10). The old lookup index
(tenant, type, param, value) is a prefix of both and goes. Existing rows are filled from fhir_resources (tokens
exist only for current, undeleted versions).

Revision ID: 0c1bfc20fc08
Revises: 3927be63dcc3
Create Date: 2026-11-27 01:13:42.143012+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0c1bfc20fc08'
down_revision: str | None = '3927be63dcc3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('fhir_search_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('clinical_date', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_updated', sa.DateTime(timezone=True), nullable=True))

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            'UPDATE fhir_search_tokens AS t '
            'SET patient_id = r.patient_id, clinical_date = r.clinical_date, last_updated = r.last_updated '
            'FROM fhir_resources AS r '
            'WHERE r.tenant_id = t.tenant_id AND r.resource_type = t.resource_type '
            'AND r.resource_id = t.resource_id AND r.is_current'
        )
    else:  # SQLite: a row-value correlated subquery (3.15+), one primary-key probe per token
        op.execute(
            'UPDATE fhir_search_tokens '
            'SET (patient_id, clinical_date, last_updated) = ('
            'SELECT r.patient_id, r.clinical_date, r.last_updated FROM fhir_resources AS r '
            'WHERE r.tenant_id = fhir_search_tokens.tenant_id '
            'AND r.resource_type = fhir_search_tokens.resource_type '
            'AND r.resource_id = fhir_search_tokens.resource_id AND r.is_current = 1)'
        )

    with op.batch_alter_table('fhir_search_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fhir_search_tokens_lookup'))
        batch_op.create_index('ix_fhir_search_tokens_date', ['tenant_id', 'resource_type', 'param', 'value', 'clinical_date', 'resource_id'], unique=False)
        batch_op.create_index('ix_fhir_search_tokens_updated', ['tenant_id', 'resource_type', 'param', 'value', 'last_updated', 'resource_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('fhir_search_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_search_tokens_updated')
        batch_op.drop_index('ix_fhir_search_tokens_date')
        batch_op.create_index(batch_op.f('ix_fhir_search_tokens_lookup'), ['tenant_id', 'resource_type', 'param', 'value'], unique=False)
        batch_op.drop_column('last_updated')
        batch_op.drop_column('clinical_date')
        batch_op.drop_column('patient_id')
