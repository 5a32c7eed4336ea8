"""Recomputing and storing plan statuses: on every write (same transaction) and in the periodic sweep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from service.caseload.facts import (
    PatientFacts,
    acknowledgement_facts,
    administration_facts,
    appointment_facts,
    belongs,
    cbt_facts,
    counts,
    enrollment_facts,
    load_patient_facts,
    measurement_facts,
    sent_readings,
    session_times,
)
from service.caseload.protocols import find_protocol
from service.caseload.tables import URGENCY, FlagAcknowledgement, PlanStatusRow
from service.clock import now_utc
from service.db.memo import remembered
from service.plan_status import PlanStatus, Protocol, compute_plan_status
from service.records.appointment import Appointment
from service.records.cbt import CbtSession
from service.records.enrollment import Enrollment
from service.records.ketamine import KetamineAdministration
from service.records.questionnaire import QuestionnaireResponse
from service.records.tenant import Tenant
from service.records.vital_sign import VitalSign


class ProtocolMissing(LookupError):
    pass


def plan_statuses(session: Session, tenant_id: str, patient_id: str, as_of: datetime) -> list[PlanStatus]:
    """Every enrollment's status as of an instant, computed from what is stored now."""
    facts = load_patient_facts(session, tenant_id, patient_id)
    protocols = _Protocols(session, tenant_id)
    return [_status(protocols, facts, enrollment, as_of) for enrollment in facts.enrollments]


class _Protocols:
    """find_protocol, asked once per protocol and version within one recompute (it reads the tenant's table);
    and the tenant's zone, in which the plan status counts days."""

    def __init__(self, session: Session, tenant_id: str) -> None:
        self.session, self.tenant_id = session, tenant_id
        self.found: dict[tuple[str, str | None], Protocol | None] = {}
        self.zone = _tenant_zone(session, tenant_id)

    def get(self, protocol_id: str, version: str | None) -> Protocol | None:
        key = (protocol_id, version)
        if key not in self.found:
            self.found[key] = find_protocol(self.session, self.tenant_id, protocol_id, version)
        return self.found[key]


def _status(protocols: _Protocols, facts: PatientFacts, enrollment: Enrollment, as_of: datetime) -> PlanStatus:
    protocol = protocols.get(enrollment.protocol_id, enrollment.protocol_version)
    if protocol is None:
        raise ProtocolMissing(f"protocol {enrollment.protocol_id} {enrollment.protocol_version} is not available")
    given = [r for r in facts.administrations if counts(r, enrollment)]
    sent, sessions = sent_readings(facts.vital_signs), [session_times(r) for r in given]
    return compute_plan_status(
        enrollment_facts(enrollment, protocol.version),
        [administration_facts(r, sent, sessions) for r in given],
        [cbt_facts(r) for r in facts.cbt_sessions if counts(r, enrollment)],
        [measurement_facts(r) for r in facts.responses if belongs(r.enrollment_id, enrollment)],
        protocol,
        [
            acknowledgement_facts(a)
            for a in facts.acknowledgements
            if a.enrollment_id == enrollment.id and a.acknowledged_at <= as_of
        ],
        as_of,
        tz=protocols.zone,
        appointments=[appointment_facts(r) for r in facts.appointments if counts(r, enrollment)],
    )


def recompute_patient(session: Session, tenant_id: str, patient_id: str, as_of: datetime | None = None) -> None:
    """Replace the stored statuses of the patient's enrollments; part of the caller's transaction."""
    as_of = as_of or now_utc()
    facts = load_patient_facts(session, tenant_id, patient_id)
    _replace(session, tenant_id, [patient_id], {patient_id: facts}, _Protocols(session, tenant_id), as_of)


def recompute_patients(
    session: Session, tenant_id: str, patient_ids: Sequence[str], as_of: datetime | None = None, *, chunk: int = 500
) -> int:
    """recompute_patient for many patients of one tenant, reading their records `chunk` patients per query
    instead of five queries per patient. Part of the caller's transaction; returns how many statuses it stored."""
    as_of = as_of or now_utc()
    session.flush()  # the rows are read with plain SELECTs: pending changes must be in the database first
    protocols = _Protocols(session, tenant_id)
    stored = 0
    for start in range(0, len(patient_ids), chunk):
        part = list(patient_ids[start : start + chunk])
        stored += _replace(session, tenant_id, part, load_facts_of(session, tenant_id, part), protocols, as_of)
    return stored


# The columns the facts (service/caseload/facts.py) and the trend line read, per table; others load every column.
_FACT_COLUMNS = {
    "administrations": {
        "id",
        "patient_id",
        "enrollment_id",
        "status",
        "started_at",
        "ended_at",
        "drug",
        "vital_signs",
        "sedation_score",
        "dissociation_score",
        "observation_minutes",
        "adverse_events",
        "rems_form_submitted_at",
    },
    "cbt_sessions": {
        "id",
        "patient_id",
        "enrollment_id",
        "session_number",
        "planned_start",
        "status",
        "actual_start",
        "modality",
    },
    "appointments": {"id", "patient_id", "enrollment_id", "service", "status", "start", "created_at"},
    "vital_signs": {
        "patient_id",
        "ketamine_administration_id",
        "taken_at",
        "status",
        "systolic_mmhg",
        "diastolic_mmhg",
        "heart_rate_bpm",
        "spo2_percent",
    },
    "responses": {
        "id",
        "patient_id",
        "enrollment_id",
        "instrument",
        "authored_at",
        "total",
        "complete",
        "items_reported",
        "safety_findings",
        "status",
    },
}


def load_facts_of(session: Session, tenant_id: str, patient_ids: Sequence[str]) -> dict[str, PatientFacts]:
    """load_patient_facts for several patients, one query per table."""
    by_patient: dict[str, dict[str, list[Any]]] = {p: {} for p in patient_ids}
    tables = {
        "enrollments": Enrollment,
        "administrations": KetamineAdministration,
        "cbt_sessions": CbtSession,
        "responses": QuestionnaireResponse,
        "acknowledgements": FlagAcknowledgement,
        "appointments": Appointment,
        "vital_signs": VitalSign,
    }
    for name, table in tables.items():
        # Plain rows, not ORM instances: the facts only read attributes, and building ~20 instances per patient
        # (identity map, change tracking) cost twice the status computation itself. Only the columns the facts
        # read: decoding the answers JSON and timestamps nobody reads was a third of the load.
        columns = table.__table__.columns  # type: ignore[attr-defined]
        wanted = [c for c in columns if name not in _FACT_COLUMNS or c.name in _FACT_COLUMNS[name]]
        query = sa_select(*wanted).where(columns.tenant_id == tenant_id, columns.patient_id.in_(list(patient_ids)))
        for row in session.execute(query):
            by_patient[row.patient_id].setdefault(name, []).append(row)
    return {
        patient_id: PatientFacts(**{name: found.get(name, []) for name in tables})
        for patient_id, found in by_patient.items()
    }


def _replace(
    session: Session,
    tenant_id: str,
    patient_ids: list[str],
    facts_of: dict[str, PatientFacts],
    protocols: _Protocols,
    as_of: datetime,
) -> int:
    rows = []
    for patient_id in patient_ids:
        facts = facts_of[patient_id]
        for enrollment in facts.enrollments:
            status = _status(protocols, facts, enrollment, as_of)
            rows.append(_row(tenant_id, enrollment, status, _trend(facts, enrollment, as_of)))
    session.execute(
        delete(PlanStatusRow).where(
            col(PlanStatusRow.tenant_id) == tenant_id,
            col(PlanStatusRow.patient_id).in_(patient_ids)
            if len(patient_ids) > 1
            else col(PlanStatusRow.patient_id) == patient_ids[0],
        )
    )
    if rows:
        # A Core multi-row INSERT of plain dicts: building ORM instances and flushing them was a quarter of the
        # batched recompute (profile of 2,000 patients); nothing reads these rows back as instances here.
        session.execute(insert(PlanStatusRow.__table__), rows)  # type: ignore[attr-defined]
    return len(rows)


def _trend(facts: PatientFacts, enrollment: Enrollment, as_of: datetime) -> list[float]:
    """The primary instrument's totals over time, for the caseload's small trend line."""
    scored = sorted(
        (r.authored_at, r.total)
        for r in facts.responses
        if belongs(r.enrollment_id, enrollment)
        and r.instrument == enrollment.primary_instrument
        and r.total is not None
        and r.authored_at <= as_of
        and r.status != "entered-in-error"
    )
    return [total for _, total in scored]


def _row(tenant_id: str, enrollment: Enrollment, status: PlanStatus, trend: list[float]) -> dict[str, Any]:
    primary = status.outcomes[0] if status.outcomes else None
    open_reasons = [r for r in status.reasons if r.open and r.severity != "info"]
    due = [
        d
        for d in (
            status.next_due.ketamine_session,
            status.next_due.cbt_session,
            status.next_due.measurement,
            status.next_due.rems_form,
        )
        if d is not None
    ]
    earliest = min(due, key=lambda d: d.due_at) if due else None
    return dict(
        tenant_id=tenant_id,
        enrollment_id=status.enrollment_id,
        patient_id=status.patient_id,
        protocol_id=status.protocol_id,
        protocol_version=status.protocol_version,
        coordinator_id=enrollment.coordinator_id,
        start_date=enrollment.start_date,
        status=status.status,
        phase=status.phase,
        urgency=URGENCY[status.status],
        open_flags="," + "".join(f"{code}," for code in sorted({r.code for r in open_reasons})),
        open_urgent=sum(r.severity == "urgent" for r in open_reasons),
        open_warnings=sum(r.severity == "warning" for r in open_reasons),
        primary_instrument=enrollment.primary_instrument,
        baseline_score=primary.baseline.total if primary and primary.baseline else None,
        latest_score=primary.latest.total if primary and primary.latest else None,
        change_percent=primary.change_percent if primary else None,
        score_trend=trend,
        last_contact_at=status.last_contact.at if status.last_contact else None,
        next_due_at=earliest.due_at if earliest else None,
        next_due_kind=earliest.kind if earliest else None,
        overdue=any(d.overdue for d in due),
        next_recompute_at=status.next_recompute_at,
        computed_at=status.as_of,
        detail=status.model_dump(mode="json"),
    )


# Asked by each refreshed patient's recompute; a unit asks once (moving a tenant's zone forgets it).
TENANT_ZONE_KEY = "tenant zone"


def _tenant_zone(session: Session, tenant_id: str) -> tzinfo:
    """The tenant's zone (UTC for a tenant the service does not know, as before zones existed)."""

    def look_up() -> str:
        tenant = session.get(Tenant, tenant_id)
        return tenant.time_zone if tenant is not None else "UTC"

    return ZoneInfo(remembered(session, (TENANT_ZONE_KEY, tenant_id), look_up))
