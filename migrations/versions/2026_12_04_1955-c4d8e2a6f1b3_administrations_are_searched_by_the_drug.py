"""administrations are searched by the drug given

R4's MedicationAdministration `code` search parameter is medication.as(CodeableConcept); the projection now
indexes it as a `code` token. Administrations projected before that get their tokens from the stored body of
their current version (data only; downgrading removes them, which the old code never wrote).

Revision ID: c4d8e2a6f1b3
Revises: 73a5f120ae26
Create Date: 2026-12-04 19:55:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'c4d8e2a6f1b3'
down_revision: str | None = '73a5f120ae26'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESOURCES = sa.table(
    'fhir_resources',
    sa.column('tenant_id', sa.String),
    sa.column('resource_type', sa.String),
    sa.column('resource_id', sa.String),
    sa.column('is_current', sa.Boolean),
    sa.column('deleted', sa.Boolean),
    sa.column('patient_id', sa.String),
    sa.column('clinical_date', sa.DateTime(timezone=True)),
    sa.column('last_updated', sa.DateTime(timezone=True)),
    sa.column('body', sa.JSON),
)
TOKENS = sa.table(
    'fhir_search_tokens',
    sa.column('tenant_id', sa.String),
    sa.column('resource_type', sa.String),
    sa.column('resource_id', sa.String),
    sa.column('param', sa.String),
    sa.column('system', sa.String),
    sa.column('value', sa.String),
    sa.column('patient_id', sa.String),
    sa.column('clinical_date', sa.DateTime(timezone=True)),
    sa.column('last_updated', sa.DateTime(timezone=True)),
)
ADMINISTRATION = 'MedicationAdministration'


def upgrade() -> None:
    bind = op.get_bind()
    current = bind.execute(
        sa.select(RESOURCES).where(
            RESOURCES.c.resource_type == ADMINISTRATION,
            RESOURCES.c.is_current.is_(True),
            RESOURCES.c.deleted.is_(False),
        )
    ).all()
    rows = []
    for resource in current:
        concept = (resource.body or {}).get('medicationCodeableConcept') or {}
        for coding in concept.get('coding') or []:
            if isinstance(coding, dict) and coding.get('code'):
                rows.append(
                    {
                        'tenant_id': resource.tenant_id,
                        'resource_type': ADMINISTRATION,
                        'resource_id': resource.resource_id,
                        'param': 'code',
                        'system': coding.get('system'),
                        'value': str(coding['code']),
                        'patient_id': resource.patient_id,
                        'clinical_date': resource.clinical_date,
                        'last_updated': resource.last_updated,
                    }
                )
    bind.execute(
        sa.delete(TOKENS).where(TOKENS.c.resource_type == ADMINISTRATION, TOKENS.c.param == 'code')
    )
    for start in range(0, len(rows), 1000):
        bind.execute(sa.insert(TOKENS), rows[start : start + 1000])


def downgrade() -> None:
    op.get_bind().execute(
        sa.delete(TOKENS).where(TOKENS.c.resource_type == ADMINISTRATION, TOKENS.c.param == 'code')
    )
