"""Today's tasks, read from the stored plan statuses: open urgent reasons first, then overdue items (open warnings),
then what is due today; oldest first within each, so a ten-week-old finding sits above this morning's.

An open urgent reason is listed whatever the enrollment's state (on hold, completed, discontinued): CLINICAL.md §4,
an open urgent finding is never hidden by a status."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, col, or_, select

from fhir_mappings.patient_contact import contact_summary
from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.access import hidden_patients
from service.caseload.tables import PlanStatusRow
from service.patient_refresh import refresh_before_reading
from service.plan_status import PlanStatus
from service.plan_status.status import Due, Reason
from service.records.patient import Patient, PatientIdentifier
from service.records.practitioner import Practitioner
from service.worklist.tables import OutreachAttempt, StaffLink, WorklistTaskState

Tier = Literal["urgent", "overdue", "due_today"]
View = Literal["mine", "team"]
TIER_ORDER: dict[Tier, int] = {"urgent": 0, "overdue": 1, "due_today": 2}
_DUE_TODAY = {
    "ketamine_session": ("A dosing session is due today", "confirm the patient is coming and has a ride home"),
    "cbt_session": ("A CBT session is due today", "confirm the session with the patient and the therapist"),
    "measurement": ("A questionnaire is due today", "send the questionnaire"),
    "rems_form": ("The REMS form is due today", "ask the clinic to submit it"),
}


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutreachView(_Out):
    channel: str
    outcome: str
    note: str
    at: datetime
    by: str


class WorklistTask(_Out):
    id: str
    tier: Tier
    code: str
    message: str
    next_step: str | None
    since: datetime
    age: str
    age_days: int
    patient_id: str
    enrollment_id: str
    patient_name: str
    mrn: str | None
    contact: list[str]
    status: str
    enrollment_status: str | None
    coordinator_id: str | None
    escalated_to: str | None = None
    escalated_to_name: str | None = None
    escalation_note: str | None = None
    snoozed_until: date | None = None
    outreach: list[OutreachView] = []


class Worklist(_Out):
    view: View
    today: date
    # The signed-in user's practitioner, when linked (None: "mine" is empty until an administrator links them).
    practitioner_id: str | None
    tasks: list[WorklistTask]
    snoozed: int  # tasks left off today's list by a snooze


def task_id(enrollment_id: str, kind: str, code: str, occurrence: str) -> str:
    """Stable per occurrence (a new occurrence is a new task) and carrying its enrollment, so one row finds it."""
    digest = hashlib.sha256(f"{kind}|{code}|{occurrence}".encode()).hexdigest()[:16]
    return f"{enrollment_id}.{digest}"


def enrollment_of(task: str) -> str:
    return task.split(".", 1)[0][:36]


def age_words(since: datetime, now: datetime) -> str:
    """How old, in words a coordinator reads at a glance: weeks once it is two weeks old."""
    elapsed = max(now - since, timedelta(0))
    if elapsed < timedelta(hours=1):
        return "less than an hour"
    if elapsed < timedelta(days=1):
        hours = int(elapsed.total_seconds() // 3600)
        return "1 hour" if hours == 1 else f"{hours} hours"
    if elapsed < timedelta(days=14):
        return "1 day" if elapsed.days == 1 else f"{elapsed.days} days"
    return f"{elapsed.days // 7} weeks"


def linked_practitioner(session: Session, ctx: RequestContext) -> str | None:
    link = session.get(StaffLink, (ctx.tenant_id, ctx.principal.subject))
    return link.practitioner_id if link is not None else None


@dataclass(frozen=True)
class FoundTask:
    tier: Tier
    id: str
    code: str
    message: str
    next_step: str | None
    since: datetime


def row_tasks(row: PlanStatusRow, today: date, zone: tzinfo) -> list[FoundTask]:
    """One enrollment's tasks today, from its stored status: the reasons' own messages, and what is due today."""
    status = PlanStatus.model_validate(row.detail)
    found: list[FoundTask] = []
    for reason in status.reasons:
        tier = _reason_tier(reason)
        if tier is not None:
            tid = task_id(row.enrollment_id, "reason", reason.code, reason.occurrence_id)
            found.append(FoundTask(tier, tid, reason.code, reason.message, reason.next_step, reason.since))
    if status.enrollment_status in (None, "active"):
        due_items = status.next_due.ketamine_session, status.next_due.cbt_session, status.next_due.measurement
        for due in (*due_items, status.next_due.rems_form):
            if due is not None and _due_today(due, today, zone):
                message, step = _DUE_TODAY[due.kind]
                tid = task_id(row.enrollment_id, "due", due.kind, due.after_record_id)
                message += " (booked)" if due.booked else ""
                found.append(FoundTask("due_today", tid, f"{due.kind}_due", message, step, due.due_at))
    return found


def _reason_tier(reason: Reason) -> Tier | None:
    if not reason.open:
        return None
    if reason.severity == "urgent":
        return "urgent"
    return "overdue" if reason.severity == "warning" else None


def _due_today(due: Due, today: date, zone: tzinfo) -> bool:
    return not due.overdue and due.due_at.astimezone(zone).date() == today


def read_worklist(session: Session, ctx: RequestContext, *, view: View, now: datetime, zone: tzinfo) -> Worklist:
    """Today's list. A coordinator's "mine" is their patients; a clinician's is what was escalated to them."""
    ctx.intent = AuditIntent("list", "worklist")
    refresh_before_reading(session)
    today = now.astimezone(zone).date()
    me = linked_practitioner(session, ctx)
    states = _states(session, ctx.tenant_id, me if view == "mine" and ctx.principal.role == "clinician" else None)
    rows = _rows(session, ctx, view, me, states, today, zone)
    hidden = hidden_patients(session, ctx)
    tasks: list[tuple[FoundTask, PlanStatusRow]] = []
    snoozed = 0
    for row in rows:
        if row.patient_id in hidden:
            continue
        for found in row_tasks(row, today, zone):
            state = states.get(found.id)
            if view == "mine" and ctx.principal.role == "clinician" and (state is None or state.escalated_to != me):
                continue
            if state is not None and state.done_at is not None:
                continue
            if state is not None and state.snoozed_until is not None and state.snoozed_until > today:
                snoozed += 1
                continue
            tasks.append((found, row))
    tasks.sort(key=lambda t: (TIER_ORDER[t[0].tier], t[0].since, t[0].id))
    patients = _patients(session, ctx.tenant_id, {row.patient_id for _, row in tasks})
    names = _practitioner_names(session, ctx.tenant_id, {s.escalated_to for s in states.values() if s.escalated_to})
    outreach = _outreach(session, ctx.tenant_id, [found.id for found, _ in tasks])
    result = [
        _task(found, row, patients, states.get(found.id), names, outreach.get(found.id, []), now)
        for found, row in tasks
    ]
    record_success(session, ctx, status_code=200, patient_ids=[t.patient_id for t in result] or [None])
    return Worklist(view=view, today=today, practitioner_id=me, tasks=result, snoozed=snoozed)


def _rows(
    session: Session,
    ctx: RequestContext,
    view: View,
    me: str | None,
    states: dict[str, WorklistTaskState],
    today: date,
    zone: tzinfo,
) -> list[PlanStatusRow]:
    query = select(PlanStatusRow).where(
        col(PlanStatusRow.tenant_id) == ctx.tenant_id,
        or_(
            col(PlanStatusRow.open_urgent) > 0,
            col(PlanStatusRow.open_warnings) > 0,
            col(PlanStatusRow.next_due_at) < datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone),
        ),
    )
    if view == "mine":
        if me is None:
            return []
        if ctx.principal.role == "clinician":
            enrollments = {s.enrollment_id for s in states.values()}
            if not enrollments:
                return []
            query = query.where(col(PlanStatusRow.enrollment_id).in_(enrollments))
        else:
            query = query.where(col(PlanStatusRow.coordinator_id) == me)
    return list(session.exec(query).all())


def _states(session: Session, tenant_id: str, escalated_to: str | None) -> dict[str, WorklistTaskState]:
    query = select(WorklistTaskState).where(col(WorklistTaskState.tenant_id) == tenant_id)
    if escalated_to is not None:
        query = query.where(col(WorklistTaskState.escalated_to) == escalated_to)
    return {s.task_id: s for s in session.exec(query).all()}


def _patients(session: Session, tenant_id: str, ids: set[str]) -> dict[str, tuple[Patient, str | None]]:
    if not ids:
        return {}
    found = session.exec(select(Patient).where(col(Patient.tenant_id) == tenant_id, col(Patient.id).in_(ids)))
    mrns: dict[str, str] = {}
    for patient_id, value in session.exec(
        select(PatientIdentifier.patient_id, PatientIdentifier.value)
        .where(col(PatientIdentifier.tenant_id) == tenant_id, col(PatientIdentifier.patient_id).in_(ids))
        .order_by(col(PatientIdentifier.id).desc())
    ):
        mrns[patient_id] = value  # descending: the first identifier is written last
    return {p.id: (p, mrns.get(p.id)) for p in found}


def _practitioner_names(session: Session, tenant_id: str, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    people = session.exec(
        select(Practitioner).where(col(Practitioner.tenant_id) == tenant_id, col(Practitioner.id).in_(wanted))
    )
    return {p.id: practitioner_name(p) for p in people}


def practitioner_name(p: Practitioner) -> str:
    return f"{p.family_name}, {p.given_name}" if p.given_name else p.family_name


def _outreach(session: Session, tenant_id: str, ids: list[str]) -> dict[str, list[OutreachView]]:
    if not ids:
        return {}
    found: dict[str, list[OutreachView]] = {}
    for attempt in session.exec(
        select(OutreachAttempt)
        .where(col(OutreachAttempt.tenant_id) == tenant_id, col(OutreachAttempt.task_id).in_(ids))
        .order_by(col(OutreachAttempt.attempted_at).desc())
    ):
        found.setdefault(attempt.task_id, []).append(
            OutreachView(
                channel=attempt.channel,
                outcome=attempt.outcome,
                note=attempt.note,
                at=attempt.attempted_at,
                by=attempt.attempted_by,
            )
        )
    return found


def contact_lines(patient: Patient) -> list[str]:
    """How to reach the patient, as the patient page words it (fhir_mappings.patient_contact): phones (the
    preferred first), e-mail, the preferred channel and language."""
    summary = contact_summary(patient.telecom, patient.addresses, patient.communication)
    lines = [f"{phone.use or 'phone'}: {phone.number}" for phone in summary.phones]
    lines += [f"e-mail: {summary.email}"] if summary.email else []
    lines += [f"prefers {summary.preferred_channel}"] if summary.preferred_channel else []
    lines += [f"speaks {summary.language}"] if summary.language else []
    return lines


def patient_name(patient: Patient) -> str:
    return ", ".join(n for n in (patient.family_name, patient.given_name) if n) or patient.name_text or "(no name)"


def _task(
    found: FoundTask,
    row: PlanStatusRow,
    patients: dict[str, tuple[Patient, str | None]],
    state: WorklistTaskState | None,
    names: dict[str, str],
    outreach: list[OutreachView],
    now: datetime,
) -> WorklistTask:
    patient, mrn = patients.get(row.patient_id, (None, None))
    detail = PlanStatus.model_validate(row.detail)
    return WorklistTask(
        id=found.id,
        tier=found.tier,
        code=found.code,
        message=found.message,
        next_step=found.next_step,
        since=found.since,
        age=age_words(found.since, now),
        age_days=max((now - found.since).days, 0),
        patient_id=row.patient_id,
        enrollment_id=row.enrollment_id,
        patient_name=patient_name(patient) if patient is not None else "(no name)",
        mrn=mrn,
        contact=contact_lines(patient) if patient is not None else [],
        status=row.status,
        enrollment_status=detail.enrollment_status,
        coordinator_id=row.coordinator_id,
        escalated_to=state.escalated_to if state else None,
        escalated_to_name=names.get(state.escalated_to) if state and state.escalated_to else None,
        escalation_note=state.escalation_note if state else None,
        snoozed_until=state.snoozed_until if state else None,
        outreach=outreach,
    )
