"""The REMS monitoring form of one esketamine session: read what Tandem holds for it, and record its submission.

Tandem never submits the form to the REMS programme: the clinic does (online or by fax), then records here when it
did. Recording it closes the session's `rems_form_overdue` reason: the store's update refreshes the patient's plan
status in the same transaction, and the engine reads `rems_form_submitted_at` (plan_status.schedule.rems_deadlines).
Every read and write is audited through the record store (`ketamine-administrations`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.access import ensure_visible
from service.caseload.facts import administration_facts, sent_readings, session_times
from service.caseload.protocols import find_protocol
from service.caseload.tables import PlanStatusRow
from service.clock import now_utc
from service.errors import RecordNotFound, TandemError, invalid
from service.plan_status import SafetyThresholds
from service.record_store.kinds import KETAMINE_ADMINISTRATIONS, PATIENTS
from service.record_store.store import locked_record, read_record, update_record
from service.records.ketamine import KetamineAdministration, KetamineAdministrationPublic
from service.records.patient import PatientPublic
from service.records.practitioner import Practitioner
from service.records.tenant import Tenant
from service.records.vital_sign import VitalSign
from service.rems.form import AdverseEvent, FormInputs, Reading, RemsForm, prefill

SESSION_KIND = KETAMINE_ADMINISTRATIONS.path


class NoRemsForm(RecordNotFound):
    """The session is not one the REMS form is for (another drug, no dose given, recorded in error)."""

    def __init__(self, session_id: str, why: str) -> None:
        TandemError.__init__(self, f"no REMS monitoring form for session {session_id!r}: {why}")


class RemsSubmission(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"submitted_at": "2026-12-03T16:20:00Z"}]}
    )

    submitted_at: AwareDatetime = Field(
        description="When the clinic submitted the form to the SPRAVATO REMS (online or by fax), with its offset; "
        "not in the future, not before the session"
    )


class RemsSubmissionRecorded(BaseModel):
    session_id: str
    patient_id: str
    rems_form_submitted_at: datetime
    rems_form_submitted_by: str | None = Field(description="Who recorded it in Tandem; empty when the EHR sent it")
    already_recorded: bool = Field(description="True when the submission was recorded before: nothing changed")


def read_form(
    session: Session, ctx: RequestContext, patient_id: str, session_id: str
) -> tuple[RemsForm, KetamineAdministrationPublic, PatientPublic]:
    """The prefilled form (audited as reads of the session and the patient)."""
    record = read_record(session, ctx, KETAMINE_ADMINISTRATIONS, session_id)
    assert isinstance(record, KetamineAdministrationPublic)
    if record.patient_id != patient_id:
        raise RecordNotFound("esketamine session of this patient", session_id)
    _require_form(record.id, record.drug, record.status)
    patient = read_record(session, ctx, PATIENTS, patient_id)
    assert isinstance(patient, PatientPublic)
    days = _form_days(session, ctx.tenant_id, patient_id, record.enrollment_id)
    return prefill(_inputs(session, ctx.tenant_id, record, patient), rems_form_days=days), record, patient


def record_submission(
    session: Session,
    ctx: RequestContext,
    session_id: str,
    submitted_at: datetime | None,
    *,
    patient_id: str | None = None,
) -> RemsSubmissionRecorded:
    """Record when the form was submitted; a second call changes nothing and says so (idempotent). The session is
    found first: another hospital's, or one with no REMS form, is not found whatever the time sent (None: unreadable,
    refused once the session is known)."""
    ctx.intent = AuditIntent("update", SESSION_KIND, record_id=session_id, patient_id=patient_id)
    row = locked_record(session, ctx.tenant_id, KETAMINE_ADMINISTRATIONS, session_id)
    assert isinstance(row, KetamineAdministration)
    if patient_id is not None and row.patient_id != patient_id:
        raise RecordNotFound("esketamine session of this patient", session_id)
    ctx.intent.patient_id = row.patient_id
    ensure_visible(session, ctx, row.patient_id)
    _require_form(row.id, row.drug, row.status)
    if row.rems_form_submitted_at is not None:
        record_success(session, ctx, status_code=200, patient_ids=[row.patient_id])
        return _recorded(row, already=True)
    if submitted_at is None:
        raise invalid("submitted_at", "give the date and time the form was submitted, e.g. 2026-12-03T16:20")
    if submitted_at.tzinfo is None:
        raise invalid("submitted_at", "needs its offset from UTC, e.g. 2026-12-03T16:20:00+01:00")
    if submitted_at > now_utc():
        raise invalid("submitted_at", "is in the future: record the submission once it is made")
    if submitted_at < row.started_at:
        raise invalid("submitted_at", "is before the session started")
    row.rems_form_submitted_by = ctx.principal.subject
    changes: dict[str, Any] = {"rems_form_submitted_at": submitted_at}
    update_record(session, ctx, KETAMINE_ADMINISTRATIONS, session_id, changes, f'W/"{row.version}"')
    return _recorded(row, already=False)


def _recorded(row: KetamineAdministration, *, already: bool) -> RemsSubmissionRecorded:
    assert row.rems_form_submitted_at is not None
    return RemsSubmissionRecorded(
        session_id=row.id,
        patient_id=row.patient_id,
        rems_form_submitted_at=row.rems_form_submitted_at,
        rems_form_submitted_by=row.rems_form_submitted_by,
        already_recorded=already,
    )


def _require_form(session_id: str, drug: str, status: str) -> None:
    if drug != "esketamine":
        raise NoRemsForm(session_id, f"it is a {drug} session; the SPRAVATO REMS form is for esketamine only")
    if status == "entered-in-error":
        raise NoRemsForm(session_id, "the session was recorded in error")
    if status == "not-done":
        raise NoRemsForm(session_id, "no dose was given at this session")


def _form_days(session: Session, tenant_id: str, patient_id: str, enrollment_id: str | None) -> float:
    """The days the protocol gives for the form, as the engine reads them: the session's enrolment's protocol (the
    patient's first enrolment's for a session filed without one), the default without any."""
    rows = session.exec(
        select(PlanStatusRow)
        .where(col(PlanStatusRow.tenant_id) == tenant_id, col(PlanStatusRow.patient_id) == patient_id)
        .order_by(col(PlanStatusRow.enrollment_id))
    ).all()
    row = next((r for r in rows if r.enrollment_id == enrollment_id), rows[0] if rows else None)
    protocol = find_protocol(session, tenant_id, row.protocol_id, row.protocol_version) if row else None
    return (protocol.safety if protocol is not None else SafetyThresholds()).rems_form_days


def _inputs(
    session: Session, tenant_id: str, record: KetamineAdministrationPublic, patient: PatientPublic
) -> FormInputs:
    def rows(table: Any) -> list[Any]:
        query = select(table).where(col(table.tenant_id) == tenant_id, col(table.patient_id) == patient.id)
        return list(session.exec(query))

    administrations: list[KetamineAdministration] = rows(KetamineAdministration)
    this = next(a for a in administrations if a.id == record.id)
    # The session's own readings and those sent on their own that belong to it (the engine's rule).
    facts = administration_facts(this, sent_readings(rows(VitalSign)), [session_times(a) for a in administrations])
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    performer = session.get(Practitioner, record.performer_id) if record.performer_id else None
    earlier = [
        a
        for a in administrations
        if a.drug == "esketamine" and a.started_at < record.started_at and a.status in ("completed", "stopped")
    ]
    return FormInputs(
        given_names=_given_names(patient),
        family_name=patient.family_name,
        birth_date=patient.birth_date,
        sex=patient.sex,
        started_at=record.started_at,
        ended_at=record.ended_at,
        dose_mg=record.dose_mg,
        lot_number=record.lot_number,
        observation_minutes=record.observation_minutes,
        sedation_score=record.sedation_score,
        dissociation_score=record.dissociation_score,
        readings=tuple(Reading(v.taken_at, v.systolic, v.diastolic, v.spo2) for v in facts.vital_signs),
        adverse_events=tuple(AdverseEvent(e.description, e.serious) for e in record.adverse_events),
        earlier_esketamine_sessions=len(earlier),
        monitoring_hcp=(performer.given_name, performer.family_name)
        if performer is not None and performer.tenant_id == tenant_id
        else None,
        setting_name=tenant.name,
        zone=ZoneInfo(tenant.time_zone),
        submitted_at=record.rems_form_submitted_at,
        submitted_by=record.rems_form_submitted_by,
    )


def _given_names(patient: PatientPublic) -> tuple[str, ...]:
    """The given names as the EHR sent them (FHIR name.given, each one a name); else the one given name."""
    for name in patient.names:
        given = name.get("given") if isinstance(name, dict) else None
        if isinstance(given, list) and given and all(isinstance(g, str) for g in given):
            return tuple(given)
    return (patient.given_name,) if patient.given_name else ()
