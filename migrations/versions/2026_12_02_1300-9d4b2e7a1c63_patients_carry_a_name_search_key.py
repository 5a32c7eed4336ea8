"""patients carry a name search key

The caseload is searched by name (accent- and case-insensitive), MRN and date of birth (issue #21, item 2). The
folded "family given" is stored with the patient (`name_key`, written with every create and update), so the
search is one portable LIKE on SQLite and PostgreSQL. Existing patients get their key here.

Revision ID: 9d4b2e7a1c63
Revises: 7c3e9a41d2f0
Create Date: 2026-12-02 13:00:00+00:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '9d4b2e7a1c63'
down_revision: str | None = '7c3e9a41d2f0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(*names: str | None) -> str:
    # A copy of service.records.patient.name_key as of this revision: a migration must not change with the code.
    text = unicodedata.normalize('NFKD', ' '.join(n for n in names if n))
    return ' '.join(''.join(c for c in text if not unicodedata.combining(c)).casefold().split())


def upgrade() -> None:
    op.add_column('patients', sa.Column('name_key', sa.String(length=520), nullable=False, server_default=''))
    patients = sa.table(
        'patients',
        sa.column('tenant_id', sa.String),
        sa.column('id', sa.String),
        sa.column('family_name', sa.String),
        sa.column('given_name', sa.String),
        sa.column('name_key', sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(patients.c.tenant_id, patients.c.id, patients.c.family_name, patients.c.given_name))
    for tenant_id, patient_id, family, given in rows.all():
        bind.execute(
            sa.update(patients)
            .where(patients.c.tenant_id == tenant_id, patients.c.id == patient_id)
            .values(name_key=_key(family, given))
        )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would drop and recreate patients, which other tables'
    # foreign keys reference.
    op.drop_column('patients', 'name_key')
