"""Engine inputs read from the stored records of one patient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from service.caseload.tables import FlagAcknowledgement
from service.plan_status import (
    Acknowledgement,
    AdverseEventFacts,
    AppointmentFacts,
    CbtSessionFacts,
    EnrollmentFacts,
    KetamineSessionFacts,
    MeasurementFacts,
    SafetyFindingFacts,
    VitalSigns,
)
from service.plan_status.session_vitals import SentReading, SessionTimes, readings_for
from service.records.appointment import Appointment
from service.records.cbt import CbtSession
from service.records.enrollment import Enrollment, ended_by_death
from service.records.ketamine import KetamineAdministration
from service.records.questionnaire import QuestionnaireResponse
from service.records.vital_sign import VitalSign


@dataclass(frozen=True)
class PatientFacts:
    enrollments: list[Enrollment]
    administrations: list[KetamineAdministration]
    cbt_sessions: list[CbtSession]
    responses: list[QuestionnaireResponse]
    acknowledgements: list[FlagAcknowledgement]
    appointments: list[Appointment]
    vital_signs: list[VitalSign]


def load_patient_facts(session: Session, tenant_id: str, patient_id: str) -> PatientFacts:
    def rows(table: Any) -> list[Any]:
        query = select(table).where(col(table.tenant_id) == tenant_id, col(table.patient_id) == patient_id)
        return list(session.exec(query))

    return PatientFacts(
        enrollments=rows(Enrollment),
        administrations=rows(KetamineAdministration),
        cbt_sessions=rows(CbtSession),
        responses=rows(QuestionnaireResponse),
        acknowledgements=rows(FlagAcknowledgement),
        appointments=rows(Appointment),
        vital_signs=rows(VitalSign),
    )


def belongs(record_enrollment_id: str | None, enrollment: Enrollment) -> bool:
    """A record names its enrollment, or none (EHRs rarely know ours): then it counts for every enrollment."""
    return record_enrollment_id in (None, enrollment.id)


def counts(record: KetamineAdministration | CbtSession | Appointment, enrollment: Enrollment) -> bool:
    """Sessions recorded in error count for nothing (responses in error are ignored by the engine itself)."""
    return record.status != "entered-in-error" and belongs(record.enrollment_id, enrollment)


def enrollment_facts(enrollment: Enrollment, protocol_version: str) -> EnrollmentFacts:
    return EnrollmentFacts(
        id=enrollment.id,
        patient_id=enrollment.patient_id,
        protocol_id=enrollment.protocol_id,
        protocol_version=protocol_version,
        start_date=enrollment.start_date,
        status=enrollment.status,
        status_reason=enrollment.status_reason,
        ended_by_death=ended_by_death(enrollment.status, enrollment.status_reason),
        primary_instrument=enrollment.primary_instrument,
        coordinator_id=enrollment.coordinator_id,
    )


def session_times(row: KetamineAdministration) -> SessionTimes:
    return SessionTimes(row.id, row.started_at, row.ended_at, row.observation_minutes)


def sent_readings(rows: list[VitalSign]) -> list[SentReading]:
    """The vital signs sent on their own that count (one sent in error counts for nothing)."""
    return [
        SentReading(
            taken_at=r.taken_at,
            session_id=r.ketamine_administration_id,
            systolic=r.systolic_mmhg,
            diastolic=r.diastolic_mmhg,
            heart_rate=r.heart_rate_bpm,
            spo2=r.spo2_percent,
        )
        for r in rows
        if r.status != "entered-in-error"
    ]


def administration_facts(
    row: KetamineAdministration,
    sent: list[SentReading] | None = None,
    sessions: list[SessionTimes] | None = None,
) -> KetamineSessionFacts:
    """The session's facts; `sent` are the patient's vital signs sent on their own, of which those taken at this
    session (by its id, or by its window among `sessions`) join its own readings for the safety rules."""
    own = tuple(
        VitalSigns(
            taken_at=v["taken_at"],
            systolic=v.get("systolic_mmhg"),
            diastolic=v.get("diastolic_mmhg"),
            heart_rate=v.get("heart_rate_bpm"),
            spo2=v.get("spo2_percent"),
        )
        for v in row.vital_signs
    )
    joined = readings_for(session_times(row), sent, sessions or [session_times(row)]) if sent else []
    return KetamineSessionFacts(
        id=row.id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        status=row.status,
        drug=row.drug,
        vital_signs=own + tuple(joined),
        sedation_score=row.sedation_score,
        dissociation_score=row.dissociation_score,
        observation_minutes=row.observation_minutes,
        adverse_events=tuple(
            AdverseEventFacts(description=e["description"], serious=e.get("serious", False)) for e in row.adverse_events
        ),
        rems_form_submitted_at=row.rems_form_submitted_at,
    )


def cbt_facts(row: CbtSession) -> CbtSessionFacts:
    return CbtSessionFacts(
        id=row.id,
        session_number=row.session_number,
        planned_start=row.planned_start,
        status=row.status,
        actual_start=row.actual_start,
        modality=row.modality,
    )


def appointment_facts(row: Appointment) -> AppointmentFacts:
    return AppointmentFacts(
        id=row.id, service=row.service, status=row.status, start=row.start, recorded_at=row.created_at
    )


def measurement_facts(row: QuestionnaireResponse) -> MeasurementFacts:
    return MeasurementFacts(
        id=row.id,
        instrument=row.instrument,
        authored_at=row.authored_at,
        total=row.total,
        complete=row.complete,
        items_reported=row.items_reported,
        safety_findings=tuple(
            SafetyFindingFacts(link_id=f.get("link_id"), code=f.get("code"), reason=f["reason"], value=f.get("value"))
            for f in row.safety_findings
        ),
        status=row.status,
    )


def acknowledgement_facts(row: FlagAcknowledgement) -> Acknowledgement:
    return Acknowledgement(
        flag_code=row.flag_code,
        record_id=row.occurrence_id,
        acknowledged_at=row.acknowledged_at,
        by=row.acknowledged_by,
        note=row.note,
    )
