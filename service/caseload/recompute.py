"""Recomputing and storing plan statuses: on every write (same transaction) and in the periodic sweep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from service.caseload.facts import (
    PatientFacts,
    acknowledgement_facts,
    administration_facts,
    belongs,
    cbt_facts,
    counts,
    enrollment_facts,
    load_patient_facts,
    measurement_facts,
)
from service.caseload.protocols import find_protocol
from service.caseload.tables import URGENCY, PlanStatusRow
from service.clock import now_utc
from service.plan_status import PlanStatus, compute_plan_status
from service.records.enrollment import Enrollment


class ProtocolMissing(LookupError):
    pass


def plan_statuses(session: Session, tenant_id: str, patient_id: str, as_of: datetime) -> list[PlanStatus]:
    """Every enrollment's status as of an instant, computed from what is stored now."""
    facts = load_patient_facts(session, tenant_id, patient_id)
    return [_status(session, tenant_id, facts, enrollment, as_of) for enrollment in facts.enrollments]


def _status(
    session: Session, tenant_id: str, facts: PatientFacts, enrollment: Enrollment, as_of: datetime
) -> PlanStatus:
    protocol = find_protocol(session, tenant_id, enrollment.protocol_id, enrollment.protocol_version)
    if protocol is None:
        raise ProtocolMissing(f"protocol {enrollment.protocol_id} {enrollment.protocol_version} is not available")
    return compute_plan_status(
        enrollment_facts(enrollment, protocol.version),
        [administration_facts(r) for r in facts.administrations if counts(r, enrollment)],
        [cbt_facts(r) for r in facts.cbt_sessions if counts(r, enrollment)],
        [measurement_facts(r) for r in facts.responses if belongs(r.enrollment_id, enrollment)],
        protocol,
        [
            acknowledgement_facts(a)
            for a in facts.acknowledgements
            if a.enrollment_id == enrollment.id and a.acknowledged_at <= as_of
        ],
        as_of,
    )


def recompute_patient(session: Session, tenant_id: str, patient_id: str, as_of: datetime | None = None) -> None:
    """Replace the stored statuses of the patient's enrollments; part of the caller's transaction."""
    as_of = as_of or now_utc()
    statuses = plan_statuses(session, tenant_id, patient_id, as_of)
    session.execute(
        delete(PlanStatusRow).where(
            col(PlanStatusRow.tenant_id) == tenant_id, col(PlanStatusRow.patient_id) == patient_id
        )
    )
    enrollments = {
        e.id: e
        for e in session.exec(
            select(Enrollment).where(col(Enrollment.tenant_id) == tenant_id, col(Enrollment.patient_id) == patient_id)
        )
    }
    facts = load_patient_facts(session, tenant_id, patient_id)
    for status in statuses:
        enrollment = enrollments[status.enrollment_id]
        session.add(_row(tenant_id, enrollment, status, _trend(facts, enrollment, as_of)))
    session.flush()


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


def _row(tenant_id: str, enrollment: Enrollment, status: PlanStatus, trend: list[float]) -> PlanStatusRow:
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
    return PlanStatusRow(
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
