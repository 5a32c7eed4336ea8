"""patients carry family and given search keys

FHIR searches a patient's family and given names apart (US Core: Patient?family=, Patient?given=; R4 string
search: starts with, case and accents ignored; issue #21, item 2). The folded family name and given names are
stored with the patient beside name_key (`family_key`, `given_key`, written with every create and update), so
each is one portable LIKE on SQLite and PostgreSQL; name_key ("family given") cannot say where the family name
ends. Existing patients get their keys here.

Revision ID: ff6277576689
Revises: faf9b4145a57
Create Date: 2026-12-04 02:00:00+00:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'ff6277576689'
down_revision: str | None = 'faf9b4145a57'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(name: str | None) -> str:
    # A copy of service.records.patient.name_key as of this revision: a migration must not change with the code.
    text = unicodedata.normalize('NFKD', name or '')
    return ' '.join(''.join(c for c in text if not unicodedata.combining(c)).casefold().split())


def upgrade() -> None:
    op.add_column('patients', sa.Column('family_key', sa.String(length=255), nullable=False, server_default=''))
    op.add_column('patients', sa.Column('given_key', sa.String(length=255), nullable=False, server_default=''))
    patients = sa.table(
        'patients',
        sa.column('tenant_id', sa.String),
        sa.column('id', sa.String),
        sa.column('family_name', sa.String),
        sa.column('given_name', sa.String),
        sa.column('family_key', sa.String),
        sa.column('given_key', sa.String),
    )
    bind = op.get_bind()
    named = sa.or_(patients.c.family_name.is_not(None), patients.c.given_name.is_not(None))
    rows = bind.execute(
        sa.select(patients.c.tenant_id, patients.c.id, patients.c.family_name, patients.c.given_name).where(named)
    )
    for tenant_id, patient_id, family, given in rows.all():
        bind.execute(
            sa.update(patients)
            .where(patients.c.tenant_id == tenant_id, patients.c.id == patient_id)
            .values(family_key=_key(family), given_key=_key(given))
        )


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite 3.35+): a batch copy would drop and recreate patients, which other tables'
    # foreign keys reference.
    op.drop_column('patients', 'given_key')
    op.drop_column('patients', 'family_key')
