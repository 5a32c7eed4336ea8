"""After anything that can change a patient's plan: recompute the statuses and re-project the CarePlans.

One function, so a record write, a flag acknowledgement and the time-driven sweep keep the caseload and the
FHIR CarePlans (which carry the computed status) in step.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.caseload.recompute import recompute_patient
from service.caseload.tables import PlanStatusRow
from service.clock import now_utc
from service.db.engine import session_scope
from service.fhir.projection import project, resources_of
from service.records.base import TenantRecord, record_meta
from service.records.enrollment import Enrollment, EnrollmentPublic, condition_from_columns


def refresh_patient(
    session: Session, *, tenant_id: str, patient_id: str, canonical_base: str, as_of: datetime | None = None
) -> None:
    recompute_patient(session, tenant_id, patient_id, as_of)
    statuses = {
        row.enrollment_id: row
        for row in session.exec(
            select(PlanStatusRow).where(
                col(PlanStatusRow.tenant_id) == tenant_id, col(PlanStatusRow.patient_id) == patient_id
            )
        )
    }
    enrollments = session.exec(
        select(Enrollment).where(col(Enrollment.tenant_id) == tenant_id, col(Enrollment.patient_id) == patient_id)
    )
    for enrollment in enrollments:
        status = statuses.get(enrollment.id)
        codes = sorted(code for code in status.open_flags.split(",") if code) if status else []
        project(
            session,
            tenant_id=tenant_id,
            record_kind="enrollments",
            record_id=enrollment.id,
            patient_id=patient_id,
            resources=resources_of(
                "enrollments",
                _public(enrollment),
                canonical_base,
                plan_status=status.status if status else None,
                plan_status_reasons=codes,
            ),
        )


def _public(row: TenantRecord) -> EnrollmentPublic:
    columns = {k: v for k, v in row.model_dump().items() if k not in TenantRecord.model_fields}
    return EnrollmentPublic.model_validate({**condition_from_columns(columns), **record_meta(row)})


def sweep(engine: Engine, *, canonical_base: str, now: datetime | None = None) -> int:
    """Refresh every patient whose status may have changed by the passage of time; returns how many."""
    now = now or now_utc()
    with session_scope(engine) as session:
        due = session.exec(
            select(PlanStatusRow.tenant_id, PlanStatusRow.patient_id)
            .where(col(PlanStatusRow.next_recompute_at) <= now)
            .distinct()
        ).all()
    for tenant_id, patient_id in due:
        with session_scope(engine) as session:
            refresh_patient(
                session, tenant_id=tenant_id, patient_id=patient_id, canonical_base=canonical_base, as_of=now
            )
    return len(due)
