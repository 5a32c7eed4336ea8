"""patients as hospitals send them; every intake keeps the resource it received

A valid R4 Patient identifies a person by an identifier, a name (family, given or only a text) and gender
(US Core); its birth date may be absent and its name may be a text only (issue #19, item 6). Names, telecom,
addresses, contacts and languages are kept as sent (FHIR JSON), and deceased[x] is kept: a deceased patient's
enrolment ends. `received_resources` keeps, with each record an intake made, the resource as its sender sent it
and the elements Tandem did not use (provenance: nothing sent is silently lost).

family_name and birth_date become nullable. On SQLite that is a new column, a copy, a DROP COLUMN and a RENAME
(SQLite 3.35+): a batch copy would drop and recreate `patients`, and with foreign keys on, dropping it deletes
every row that references it (patient_identifiers cascade).

Revision ID: b7d2f4a8c6e1
Revises: b7d2f4a6c8e1
Create Date: 2026-12-03 12:55:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'b7d2f4a8c6e1'
down_revision: str | None = 'b7d2f4a6c8e1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON_LISTS = ('names', 'telecom', 'addresses', 'contacts', 'communication')
_NOW_OPTIONAL = (('family_name', sa.String(length=255)), ('birth_date', sa.Date()))


def _set_nullable(name: str, type_: sa.types.TypeEngine, nullable: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('patients', name, existing_type=type_, nullable=nullable)
        return
    op.add_column('patients', sa.Column(f'{name}_new', type_, nullable=True))
    op.execute(f'UPDATE patients SET {name}_new = {name}')
    op.drop_column('patients', name)
    op.execute(f'ALTER TABLE patients RENAME COLUMN {name}_new TO {name}')
    # SQLite cannot add NOT NULL to an existing column; the model keeps the rule on the way back (downgrade).


def upgrade() -> None:
    for name, type_ in _NOW_OPTIONAL:
        _set_nullable(name, type_, True)
    op.add_column('patients', sa.Column('name_text', sa.String(length=255), nullable=True))
    op.add_column('patients', sa.Column('deceased', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('patients', sa.Column('deceased_at', sa.String(length=64), nullable=True))
    for name in _JSON_LISTS:
        op.add_column('patients', sa.Column(name, sa.JSON(), nullable=False, server_default='[]'))
    op.create_table(
        'received_resources',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('record_kind', sa.String(length=48), nullable=False),
        sa.Column('record_id', sa.String(length=36), nullable=False),
        sa.Column('resource_type', sa.String(length=64), nullable=False),
        sa.Column('source_system', sa.String(length=1024), nullable=True),
        sa.Column('sender', sa.String(length=255), nullable=False),
        sa.Column('request_id', sa.String(length=128), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resource', sa.JSON(), nullable=False),
        sa.Column('unused', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_received_resources_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_received_resources')),
    )
    op.create_index(
        'ix_received_resources_record',
        'received_resources',
        ['tenant_id', 'record_kind', 'record_id', 'id'],
        unique=False,
    )


def downgrade() -> None:
    bind = op.get_bind()
    missing = bind.execute(
        sa.text('SELECT count(*) FROM patients WHERE birth_date IS NULL OR family_name IS NULL')
    ).scalar_one()
    if missing:
        raise RuntimeError(
            f'{missing} patients have no birth date or no family name; the previous schema requires both. '
            'Give them one (or delete them) before downgrading.'
        )
    op.drop_index('ix_received_resources_record', table_name='received_resources')
    op.drop_table('received_resources')
    for name in reversed(_JSON_LISTS):
        op.drop_column('patients', name)
    op.drop_column('patients', 'deceased_at')
    op.drop_column('patients', 'deceased')
    op.drop_column('patients', 'name_text')
    if bind.dialect.name != 'sqlite':
        for name, type_ in _NOW_OPTIONAL:
            op.alter_column('patients', name, existing_type=type_, nullable=False)
