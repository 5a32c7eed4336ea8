"""appointments: CBT and ketamine/esketamine sessions booked in the EHR

A FHIR Appointment becomes a planned session (issue #19, item 4): the next booked one is the plan's next due date,
a no-show counts as a missed session. A new table; nothing existing changes.

Revision ID: b6d2f8a4c1e9
Revises: b7e2c4a9d1f3
Create Date: 2026-12-03 12:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'b6d2f8a4c1e9'
down_revision: str | None = 'b7e2c4a9d1f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_system", sa.String(length=255), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("enrollment_id", sa.String(length=36), nullable=True),
        sa.Column("practitioner_id", sa.String(length=36), nullable=True),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_codes", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=4000), nullable=True),
        sa.Column("cancellation_reason", sa.String(length=4000), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "enrollment_id"],
            ["enrollments.tenant_id", "enrollments.id"],
            name=op.f("fk_appointments_tenant_id_enrollment_id_enrollments"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "patient_id"],
            ["patients.tenant_id", "patients.id"],
            name=op.f("fk_appointments_tenant_id_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "practitioner_id"],
            ["practitioners.tenant_id", "practitioners.id"],
            name=op.f("fk_appointments_tenant_id_practitioner_id_practitioners"),
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_appointments_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_appointments_tenant_id_id")),
        sa.UniqueConstraint(
            "tenant_id", "source_system", "source_id", name=op.f("uq_appointments_tenant_id_source_system_source_id")
        ),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appointments_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_appointments_start"), ["start"], unique=False)
        batch_op.create_index(batch_op.f("ix_appointments_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_appointments_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("appointments")
