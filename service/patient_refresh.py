"""After anything that can change a patient's plan: recompute the statuses and re-project the CarePlans.

One function, so a record write, a flag acknowledgement and the time-driven sweep keep the caseload and the
FHIR CarePlans (which carry the computed status) in step.

Inside a FHIR transaction Bundle (one database transaction for every entry) a patient's refresh is done once,
just before the commit, instead of after each of the patient's entries: the stored result is the same (each
refresh replaces the statuses from what is stored), without recomputing and re-projecting once per entry. A read
of the plan statuses or of the enrollment resources (CarePlan, Condition, Goal) inside the same transaction runs
the pending refreshes first, so later entries of the Bundle still see current statuses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session, col, select

from service.caseload.recompute import recompute_patient, recompute_patients
from service.caseload.tables import PlanStatusRow
from service.clock import now_utc
from service.db.engine import BUNDLE_TRANSACTION, session_scope
from service.projection.tables import FhirResourceVersion
from service.projection.writes import project
from service.record_fhir import Kind, PlanContext, resources_of
from service.records.base import TenantRecord, record_meta
from service.records.enrollment import Enrollment, EnrollmentPublic, condition_from_columns
from service.records.patient import Patient

PENDING = "pending_patient_refreshes"
SWEEP_CHUNK = 200
# What a refresh writes besides plan_statuses: the enrollment's projected resources.
REFRESHED_TYPES = frozenset({"CarePlan", "Condition", "Goal", "Flag"})


def refresh_patient(
    session: Session, *, tenant_id: str, patient_id: str, canonical_base: str, as_of: datetime | None = None
) -> None:
    if as_of is None and session.info.get(BUNDLE_TRANSACTION):
        pending: dict[tuple[str, str], str] = session.info.setdefault(PENDING, {})
        pending[(tenant_id, patient_id)] = canonical_base
        return
    _refresh(session, tenant_id=tenant_id, patient_id=patient_id, canonical_base=canonical_base, as_of=as_of)


def run_pending_refreshes(session: OrmSession) -> None:
    """The refreshes deferred in this transaction, once per patient, in the order the patients were first written."""
    pending: dict[tuple[str, str], str] = session.info.pop(PENDING, None) or {}
    for (tenant_id, patient_id), canonical_base in pending.items():
        _refresh(session, tenant_id=tenant_id, patient_id=patient_id, canonical_base=canonical_base, as_of=None)  # type: ignore[arg-type]


@event.listens_for(OrmSession, "before_commit")
def _before_commit(session: OrmSession) -> None:
    if session.info.get(PENDING) and not session.in_nested_transaction():  # not a savepoint's release
        run_pending_refreshes(session)


@event.listens_for(OrmSession, "after_transaction_end")
def _after_transaction_end(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended (rolled back: a commit ran them already)
        session.info.pop(PENDING, None)


@event.listens_for(OrmSession, "do_orm_execute")
def _before_dependent_read(state: ORMExecuteState) -> None:
    """A read of what a pending refresh would change sees it changed."""
    if not state.is_select or not state.session.info.get(PENDING):
        return
    classes = {mapper.class_ for mapper in state.all_mappers}
    if PlanStatusRow in classes or (FhirResourceVersion in classes and _names_refreshed_type(state.statement)):
        run_pending_refreshes(state.session)


def _names_refreshed_type(statement: Any) -> bool:
    where = getattr(statement, "whereclause", None)
    if where is None:
        return True  # unfiltered: may include them
    for element in visitors.iterate(where):
        if isinstance(element, BindParameter):
            value = element.value
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, str) and v in REFRESHED_TYPES for v in values):
                return True
    return False


def _refresh(
    session: Session, *, tenant_id: str, patient_id: str, canonical_base: str, as_of: datetime | None = None
) -> None:
    _serialise_per_patient(session, tenant_id, [patient_id])
    recompute_patient(session, tenant_id, patient_id, as_of)
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
        project(
            session,
            tenant_id=tenant_id,
            record_kind=Kind.ENROLLMENTS,
            record_id=enrollment.id,
            patient_id=patient_id,
            resources=resources_of(Kind.ENROLLMENTS, _public(enrollment), canonical_base, context),
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


def sweep(engine: Engine, *, canonical_base: str, now: datetime | None = None, chunk: int = SWEEP_CHUNK) -> int:
    """Refresh every patient whose status may have changed by the passage of time; returns how many.

    Patients are recomputed a chunk at a time (recompute_patients reads a chunk's records in one query per table),
    one transaction per chunk."""
    now = now or now_utc()
    with session_scope(engine) as session:
        due = session.exec(
            select(PlanStatusRow.tenant_id, PlanStatusRow.patient_id)
            .where(col(PlanStatusRow.next_recompute_at) <= now)
            .distinct()
        ).all()
    by_tenant: dict[str, list[str]] = {}
    for tenant_id, patient_id in due:
        by_tenant.setdefault(tenant_id, []).append(patient_id)
    for tenant_id, patient_ids in by_tenant.items():
        for start in range(0, len(patient_ids), chunk):
            part = patient_ids[start : start + chunk]
            with session_scope(engine) as session:
                _serialise_per_patient(session, tenant_id, part)
                recompute_patients(session, tenant_id, part, now)
                for patient_id in part:
                    _project_care_plans(session, tenant_id, patient_id, canonical_base)
    return len(due)
