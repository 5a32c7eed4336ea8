"""A patient's plan status (stored, or as of an earlier instant) and clinicians' acknowledgement of flags."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.access import ensure_visible
from service.caseload.recompute import plan_statuses
from service.caseload.tables import FlagAcknowledgement, PlanStatusRow
from service.clock import now_utc
from service.errors import RecordConflict, RecordNotFound, invalid
from service.patient_refresh import refresh_before_reading, refresh_patient
from service.plan_status import PlanStatus
from service.records.base import LongText, RecordId, Text
from service.records.patient import Patient

# How long the page confirms an acknowledgement after the redirect; an old link shows nothing.
JUST_ACKNOWLEDGED = timedelta(minutes=10)


class PatientPlanStatus(BaseModel):
    patient_id: str
    statuses: list[PlanStatus] = Field(description="One per enrollment, the most recent enrollment first")


class FlagAcknowledgementRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "enrollment_id": "5a0c2f7e-3b51-4c8e-9d3a-0f6f2b1c7e42",
                    "code": "phq9_item9_positive",
                    "occurrence_id": "0f3b7a1e-8c2d-4e5f-9a6b-1c2d3e4f5a6b",
                    "note": "Called the patient; safety plan reviewed, no intent or plan",
                }
            ]
        },
    )

    enrollment_id: RecordId
    code: Text = Field(description="The reason code, e.g. phq9_item9_positive")
    occurrence_id: Text = Field(description="The reason's occurrence_id: which occurrence was seen")
    note: LongText = Field(description="What was done, e.g. 'called the patient; safety plan reviewed'")


def read_plan_status(
    session: Session, ctx: RequestContext, patient_id: str, as_of: datetime | None
) -> PatientPlanStatus:
    ctx.intent = AuditIntent("read", "plan-status", record_id=patient_id, patient_id=patient_id)
    _require_patient(session, ctx, patient_id)
    if as_of is None:
        refresh_before_reading(session)
        rows = session.exec(
            select(PlanStatusRow).where(
                col(PlanStatusRow.tenant_id) == ctx.tenant_id, col(PlanStatusRow.patient_id) == patient_id
            )
        ).all()
        statuses = [PlanStatus.model_validate(row.detail) for row in rows]
    else:
        statuses = plan_statuses(session, ctx.tenant_id, patient_id, as_of)
    record_success(session, ctx, status_code=200)
    return PatientPlanStatus(patient_id=patient_id, statuses=_latest_first(statuses))


def _latest_first(statuses: list[PlanStatus]) -> list[PlanStatus]:
    """The most recent enrollment first: the one with the fewest weeks in treatment."""
    return sorted(statuses, key=lambda s: s.weeks_in_treatment)


def acknowledge_flag(
    session: Session, ctx: RequestContext, patient_id: str, request: FlagAcknowledgementRequest
) -> PatientPlanStatus:
    """Record that a clinician saw one occurrence of a flag; the status is recomputed in the same transaction."""
    ctx.intent = AuditIntent("create", "flag-acknowledgements", patient_id=patient_id)
    _require_patient(session, ctx, patient_id)
    current = session.get(PlanStatusRow, (ctx.tenant_id, request.enrollment_id))
    if current is None or current.patient_id != patient_id:
        raise invalid("enrollment_id", f"no enrollment {request.enrollment_id!r} for this patient")
    status = PlanStatus.model_validate(current.detail)
    reason = next(
        (r for r in status.reasons if r.code == request.code and r.occurrence_id == request.occurrence_id), None
    )
    if reason is None:
        raise invalid("occurrence_id", f"no flag {request.code} with occurrence {request.occurrence_id!r}")
    if reason.acknowledgement is not None:
        raise RecordConflict(f"this {request.code} flag was already acknowledged by {reason.acknowledgement.by}")
    acknowledgement = FlagAcknowledgement(
        tenant_id=ctx.tenant_id,
        enrollment_id=request.enrollment_id,
        patient_id=patient_id,
        flag_code=request.code,
        occurrence_id=request.occurrence_id,
        acknowledged_by=ctx.principal.subject,
        note=request.note,
    )
    try:
        with session.begin_nested():
            session.add(acknowledgement)
            session.flush()
    except IntegrityError:
        raise RecordConflict(f"this {request.code} flag was just acknowledged by someone else") from None
    ctx.intent.record_id = acknowledgement.id
    refresh_patient(session, tenant_id=ctx.tenant_id, patient_id=patient_id, canonical_base=ctx.settings.canonical_base)
    record_success(session, ctx, status_code=201)
    refresh_before_reading(session)  # a single write: its refresh runs now, and the answer shows it
    rows = session.exec(
        select(PlanStatusRow).where(
            col(PlanStatusRow.tenant_id) == ctx.tenant_id, col(PlanStatusRow.patient_id) == patient_id
        )
    ).all()
    return PatientPlanStatus(
        patient_id=patient_id, statuses=_latest_first([PlanStatus.model_validate(r.detail) for r in rows])
    )


def just_acknowledged(
    session: Session, ctx: RequestContext, patient_id: str, acknowledgement_id: str
) -> FlagAcknowledgement | None:
    """The acknowledgement the page was redirected with, if it is this tenant's, this patient's and recent: the
    confirmation shows what was stored, never text from the URL."""
    found = session.exec(
        select(FlagAcknowledgement).where(
            col(FlagAcknowledgement.id) == acknowledgement_id,
            col(FlagAcknowledgement.tenant_id) == ctx.tenant_id,
            col(FlagAcknowledgement.patient_id) == patient_id,
            col(FlagAcknowledgement.acknowledged_at) >= now_utc() - JUST_ACKNOWLEDGED,
        )
    ).first()
    return found


def _require_patient(session: Session, ctx: RequestContext, patient_id: str) -> None:
    found = session.exec(
        select(Patient.id).where(col(Patient.tenant_id) == ctx.tenant_id, col(Patient.id) == patient_id)
    )
    if found.first() is None:
        raise RecordNotFound("patient", patient_id)
    ensure_visible(session, ctx, patient_id)
