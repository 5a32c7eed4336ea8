"""What staff do about a task: log an outreach attempt, snooze it, escalate it to a clinician, mark it done.

Each is audited (record kind "worklist-tasks" or "outreach-attempts"), scoped to the caller's tenant (another
tenant's task is not found: 404), and refused in words when it would be unsafe or makes no sense."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.access import ensure_visible
from service.caseload.tables import PlanStatusRow
from service.clock import now_utc
from service.errors import RecordConflict, RecordNotFound, invalid
from service.patient_refresh import refresh_before_reading
from service.records.base import ApiModel
from service.records.practitioner import Practitioner
from service.records.tenant import Tenant
from service.worklist.tables import OutreachAttempt, WorklistTaskState
from service.worklist.tasks import FoundTask, enrollment_of, practitioner_name, row_tasks

Channel = Literal["phone", "sms", "email", "letter", "in_person"]
Outcome = Literal["reached", "voicemail", "no_answer", "wrong_number"]
# Practitioner roles that can act on a clinical finding (assess, acknowledge, change the plan); a therapist or a
# coordinator is not whom an escalation is for.
CLINICIAN_ROLES = frozenset({"psychiatrist", "anesthesiologist", "nurse"})
MAX_SNOOZE = timedelta(days=92)


class OutreachRequest(ApiModel):
    channel: Channel = Field(description="phone, sms, email, letter or in_person")
    outcome: Outcome = Field(description="reached, voicemail, no_answer or wrong_number")
    note: str = Field(default="", max_length=2000)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"channel": "phone", "outcome": "no_answer", "note": "rang the mobile twice"}]}
    )


class SnoozeRequest(ApiModel):
    until: date = Field(description="The task is back on the list on this day (the clinic's local date)")
    reason: str = Field(min_length=1, max_length=1000)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"until": "2026-12-07", "reason": "patient asked to be called on Monday"}]}
    )


class EscalationRequest(ApiModel):
    clinician_id: str = Field(max_length=36, description="The practitioner (a psychiatrist, anesthesiologist or nurse)")
    note: str = Field(default="", max_length=2000)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"clinician_id": "6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e", "note": "scores rising; review the plan"}
            ]
        }
    )


class TaskState(ApiModel):
    task_id: str
    patient_id: str
    snoozed_until: date | None
    snooze_reason: str | None
    escalated_to: str | None
    escalation_note: str | None
    done_at: datetime | None


class OutreachLogged(ApiModel):
    id: str
    task_id: str
    patient_id: str
    channel: Channel
    outcome: Outcome
    note: str
    attempted_at: datetime
    attempted_by: str


def tenant_zone(session: Session, tenant_id: str) -> ZoneInfo:
    tenant = session.get(Tenant, tenant_id)
    return ZoneInfo(tenant.time_zone if tenant is not None else "UTC")


def find_task(session: Session, ctx: RequestContext, task_id: str, now: datetime) -> tuple[FoundTask, PlanStatusRow]:
    """The task as it stands now, in the caller's tenant; unknown, another tenant's or no longer open: 404."""
    refresh_before_reading(session)
    row = session.get(PlanStatusRow, (ctx.tenant_id, enrollment_of(task_id)))
    if row is not None:
        zone = tenant_zone(session, ctx.tenant_id)
        found = next((t for t in row_tasks(row, now.astimezone(zone).date(), zone) if t.id == task_id), None)
        if found is not None:
            assert ctx.intent is not None
            ctx.intent.patient_id = row.patient_id
            ensure_visible(session, ctx, row.patient_id)
            return found, row
    raise RecordNotFound("worklist task", task_id)


def log_outreach(session: Session, ctx: RequestContext, task_id: str, request: OutreachRequest) -> OutreachLogged:
    ctx.intent = AuditIntent("create", "outreach-attempts", record_id=task_id)
    found, row = find_task(session, ctx, task_id, now_utc())
    attempt = OutreachAttempt(
        tenant_id=ctx.tenant_id,
        task_id=found.id,
        patient_id=row.patient_id,
        channel=request.channel,
        outcome=request.outcome,
        note=request.note,
        attempted_by=ctx.principal.subject,
    )
    session.add(attempt)
    session.flush()
    ctx.intent.record_id = attempt.id
    record_success(session, ctx, status_code=201)
    return OutreachLogged.model_validate(attempt, from_attributes=True)


def snooze_task(session: Session, ctx: RequestContext, task_id: str, request: SnoozeRequest) -> TaskState:
    ctx.intent = AuditIntent("update", "worklist-tasks", record_id=task_id)
    now = now_utc()
    found, row = find_task(session, ctx, task_id, now)
    today = now.astimezone(tenant_zone(session, ctx.tenant_id)).date()
    if request.until < today:
        raise invalid("until", f"{request.until.isoformat()} is in the past; snooze until today or later")
    if request.until > today + MAX_SNOOZE:
        raise invalid("until", f"snooze at most {MAX_SNOOZE.days} days ahead, until {today + MAX_SNOOZE}")
    # CLINICAL.md §4 and §5: an open urgent finding is never hidden, and the next action is "contact the patient today"
    # (suicide-risk pathway) or "physician review before the next dose". A snooze past today would take it off the
    # list before that action happened, so it may wait at most until later today; escalate it instead.
    if found.tier == "urgent" and request.until > today:
        raise invalid(
            "until",
            "an urgent finding cannot be snoozed past today: its next action is due today (CLINICAL.md §4 and §5); "
            "escalate it to a clinician instead",
        )
    state = _state(session, ctx, found, row)
    state.snoozed_until, state.snooze_reason, state.snoozed_by = request.until, request.reason, ctx.principal.subject
    return _saved(session, ctx, state)


def escalate_task(session: Session, ctx: RequestContext, task_id: str, request: EscalationRequest) -> TaskState:
    ctx.intent = AuditIntent("update", "worklist-tasks", record_id=task_id)
    found, row = find_task(session, ctx, task_id, now_utc())
    clinician = session.get(Practitioner, request.clinician_id)
    if clinician is None or clinician.tenant_id != ctx.tenant_id:
        raise invalid("clinician_id", f"no practitioner {request.clinician_id!r} in this clinic")
    if clinician.role not in CLINICIAN_ROLES or not clinician.active:
        raise invalid(
            "clinician_id",
            f"{clinician.family_name} is a {clinician.role}{'' if clinician.active else ' (inactive)'}, not a "
            "clinician: escalate to an active psychiatrist, anesthesiologist or nurse",
        )
    state = _state(session, ctx, found, row)
    state.escalated_to, state.escalation_note = clinician.id, request.note
    state.escalated_by, state.escalated_at = ctx.principal.subject, now_utc()
    return _saved(session, ctx, state)


def complete_task(session: Session, ctx: RequestContext, task_id: str) -> TaskState:
    ctx.intent = AuditIntent("update", "worklist-tasks", record_id=task_id)
    found, row = find_task(session, ctx, task_id, now_utc())
    if found.tier == "urgent":
        # An urgent flag stays open until a clinician acknowledges it (CLINICAL.md §4); "done" must not close it.
        raise RecordConflict("an urgent finding is closed by a clinician's acknowledgement on the patient page")
    state = _state(session, ctx, found, row)
    state.done_at, state.done_by = now_utc(), ctx.principal.subject
    return _saved(session, ctx, state)


def _state(session: Session, ctx: RequestContext, found: FoundTask, row: PlanStatusRow) -> WorklistTaskState:
    state = session.get(WorklistTaskState, (ctx.tenant_id, found.id))
    if state is None:
        state = WorklistTaskState(
            tenant_id=ctx.tenant_id, task_id=found.id, enrollment_id=row.enrollment_id, patient_id=row.patient_id
        )
    return state


def _saved(session: Session, ctx: RequestContext, state: WorklistTaskState) -> TaskState:
    state.updated_at = now_utc()
    session.add(state)
    session.flush()
    record_success(session, ctx, status_code=200)
    return TaskState.model_validate(state, from_attributes=True)


def escalation_choices(session: Session, tenant_id: str) -> list[tuple[str, str]]:
    """The clinic's active clinicians, by name, for the escalation form. Staff names, not patient data."""
    people = session.exec(
        select(Practitioner).where(
            col(Practitioner.tenant_id) == tenant_id,
            col(Practitioner.role).in_(CLINICIAN_ROLES),
            col(Practitioner.active),
        )
    )
    return sorted(((p.id, f"{practitioner_name(p)} ({p.role})") for p in people), key=lambda pair: pair[1])
