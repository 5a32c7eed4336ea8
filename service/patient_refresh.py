"""After anything that can change a patient's plan: recompute the statuses and re-project the CarePlans.

One function, so a record write, a flag acknowledgement and the time-driven sweep keep the caseload and the
FHIR CarePlans (which carry the computed status) in step.

A write asks for its patient's refresh on the unit of work (`refresh_patient`); the unit runs it once per patient,
before anything reads derived data (`refresh_pending`, called by those readers: `refresh_before_reading`) and
before its commit. Inside a transaction Bundle that is once per changed patient instead of once per entry: the
stored result is the same (each refresh replaces the statuses from what is stored).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service import outbox
from service.caseload.recompute import recompute_patient, recompute_patients
from service.caseload.tables import PlanStatusRow
from service.clock import now_utc
from service.db.unit_of_work import UnitOfWork, unit_of_work, write_inserts
from service.projection.tables import FhirResourceVersion
from service.projection.writes import project
from service.record_fhir import SENT_FROM, Kind, PlanContext, resources_of
from service.records.base import TenantRecord, record_meta
from service.records.enrollment import Enrollment, EnrollmentPublic, condition_from_columns
from service.records.patient import Patient

SWEEP_CHUNK = 200
# What a refresh writes besides plan_statuses: the enrollment's projected resources (with the referral it answers).
REFRESHED_TYPES = frozenset({"CarePlan", "Condition", "Goal", "Flag", "ServiceRequest"})


def refresh_patient(session: Session, *, tenant_id: str, patient_id: str, canonical_base: str) -> None:
    """The patient's statuses and CarePlans are refreshed before the next read of them and before commit."""

    def run(uow: UnitOfWork) -> None:
        _refresh(uow, tenant_id=tenant_id, patient_id=patient_id, canonical_base=canonical_base)

    _unit(session).defer_refresh(("patient", tenant_id, patient_id), run)


def refresh_before_reading(session: Session, resource_type: str | None = None) -> None:
    """Call before reading plan statuses (resource_type None) or any FHIR resource: the refreshes a type needs, and
    the projection rows the unit keeps to insert together (service/db/unit_of_work.py)."""
    refresh_derived(session, resource_type)
    write_inserts(session)


def refresh_derived(session: Session, resource_type: str | None = None) -> None:
    """The refreshes pending for plan statuses (resource_type None) or a type a refresh writes (a CarePlan)."""
    if resource_type is None or resource_type in REFRESHED_TYPES:
        _unit(session).refresh_pending()


def _unit(session: Session) -> UnitOfWork:
    if not isinstance(session, UnitOfWork):
        raise TypeError("derived data is refreshed by a unit of work: open one with service.db.unit_of_work")
    return session


def _refresh(session: Session, *, tenant_id: str, patient_id: str, canonical_base: str) -> None:
    write_inserts(session)  # the evidence and the CarePlans it replaces are read below
    _serialise_per_patient(session, tenant_id, [patient_id])
    recompute_patient(session, tenant_id, patient_id, None)
    _project_care_plans(session, tenant_id, patient_id, canonical_base)


def _project_care_plans(session: Session, tenant_id: str, patient_id: str, canonical_base: str) -> None:
    """The patient's CarePlans (with Condition, Goal and Flags) from the statuses just stored."""
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
    evidence = _evidence_types(session, tenant_id, patient_id)
    for enrollment in enrollments:
        context = PlanContext.of(statuses.get(enrollment.id), evidence)
        changed = project(
            session,
            tenant_id=tenant_id,
            record_kind=Kind.ENROLLMENTS,
            record_id=enrollment.id,
            patient_id=patient_id,
            resources=resources_of(Kind.ENROLLMENTS, _public(enrollment), canonical_base, context),
        )
        if changed:
            # The CarePlan an EHR holds carries the plan status: a status that moved (a new record, the passage of
            # time) is sent again, though the enrollment itself did not change; so are its progress note and, once
            # it has any, its urgent findings.
            urgent = context.plan is not None and any(r.severity == "urgent" for r in context.plan.reasons)
            for kind in SENT_FROM[Kind.ENROLLMENTS]:
                if kind is Kind.URGENT_FINDINGS and not urgent:
                    continue
                outbox.requeue(
                    session,
                    tenant_id=tenant_id,
                    record_kind=kind,
                    record_id=enrollment.id,
                    record_version=enrollment.version,
                    patient_id=patient_id,
                )


def _serialise_per_patient(session: Session, tenant_id: str, patient_ids: list[str]) -> None:
    """Two transactions writing for one patient would each replace the stored status computed without the
    other's record (and collide on its key). On PostgreSQL the patient rows are the locks that order them (taken
    in id order, so two batches cannot deadlock); SQLite already runs one writer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Patient.id)
            .where(col(Patient.tenant_id) == tenant_id, col(Patient.id).in_(patient_ids))
            .order_by(col(Patient.id))
            .with_for_update(key_share=True)
        )


def _evidence_types(session: Session, tenant_id: str, patient_id: str) -> dict[str, str]:
    """record id -> the resource type it is published as, so a Flag can point at its evidence."""
    r = FhirResourceVersion
    rows = session.exec(
        select(r.resource_id, r.resource_type).where(
            col(r.tenant_id) == tenant_id,
            col(r.patient_id) == patient_id,
            col(r.is_current).is_(True),
            col(r.resource_type).in_(["QuestionnaireResponse", "MedicationAdministration", "Encounter"]),
        )
    ).all()
    return {resource_id: resource_type for resource_id, resource_type in rows}


def _public(row: TenantRecord) -> EnrollmentPublic:
    columns = {k: v for k, v in row.model_dump().items() if k not in TenantRecord.model_fields}
    return EnrollmentPublic.model_validate({**condition_from_columns(columns), **record_meta(row)})


def sweep(
    engine: Engine,
    *,
    canonical_base: str,
    now: datetime | None = None,
    chunk: int = SWEEP_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Refresh every patient whose status may have changed by the passage of time; returns how many.

    Patients are recomputed a chunk at a time (recompute_patients reads a chunk's records in one query per table),
    one transaction per chunk; `progress(done, due)` is told once the due patients are known and after each
    chunk."""
    now = now or now_utc()
    with unit_of_work(engine) as session:
        due = session.exec(
            select(PlanStatusRow.tenant_id, PlanStatusRow.patient_id)
            .where(col(PlanStatusRow.next_recompute_at) <= now)
            .distinct()
        ).all()
    by_tenant: dict[str, list[str]] = {}
    for tenant_id, patient_id in due:
        by_tenant.setdefault(tenant_id, []).append(patient_id)
    done = 0
    if progress is not None:
        progress(done, len(due))
    for tenant_id, patient_ids in by_tenant.items():
        for start in range(0, len(patient_ids), chunk):
            part = patient_ids[start : start + chunk]
            with unit_of_work(engine) as session:
                _serialise_per_patient(session, tenant_id, part)
                recompute_patients(session, tenant_id, part, now)
                for patient_id in part:
                    _project_care_plans(session, tenant_id, patient_id, canonical_base)
            done += len(part)
            if progress is not None:
                progress(done, len(due))
    return len(due)
