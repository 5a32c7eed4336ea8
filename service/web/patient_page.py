"""One patient's page: plan status explained, the timeline, score charts, urgent flags to acknowledge, EHR sync."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session

import fhir_mappings as fm
from service.audit_trail import RequestContext
from service.auth.scopes import needs
from service.break_glass.grants import BreakGlassRequest, require_restricted_patient, start_break_glass
from service.caseload.protocols import find_protocol
from service.caseload.tables import FlagAcknowledgement
from service.clock import now_utc
from service.errors import InvalidRequest, validation_problems
from service.instruments import INSTRUMENTS
from service.patient_notes import list_notes
from service.patient_status import (
    FlagAcknowledgementRequest,
    acknowledge_flag,
    just_acknowledged,
    read_plan_status,
)
from service.plan_status import PlanStatus, SafetyThresholds
from service.record_fhir import Kind
from service.record_store.kinds import (
    APPOINTMENTS,
    CBT_SESSIONS,
    CLINICIANS,
    KETAMINE_ADMINISTRATIONS,
    PATIENTS,
    QUESTIONNAIRE_RESPONSES,
    RecordKind,
)
from service.record_store.store import ListFilters, list_records, read_record
from service.records.appointment import AppointmentPublic
from service.records.base import RecordMeta
from service.records.cbt import CbtSessionPublic
from service.records.ketamine import KetamineAdministrationPublic
from service.records.patient import PatientPublic
from service.records.patient_note import NOTE_MAX_LENGTH
from service.records.questionnaire import QuestionnaireResponsePublic
from service.self_report.invitations import SELF_REPORT_INSTRUMENTS, patient_invitations
from service.self_report.invitations import public as public_invitation
from service.sync.status import policy_refusals
from service.web import labels
from service.web.charts import ChartMarker, ChartPoint, score_chart
from service.web.deps import (
    CARE_PAGES,
    PATIENT_PAGE,
    SessionDep,
    SignedIn,
    context_for_form,
    context_for_page,
    page_zone,
)
from service.web.rendering import WebRoute, render, restricted_page
from service.web.sync_admin import patient_sync_state

router = APIRouter(route_class=WebRoute, include_in_schema=False)
LIST_PAGE = 200
MAX_RECORDS_PER_KIND = 2000


@dataclass
class TimelineEntry:
    anchor: str
    at: datetime
    kind: str  # ketamine | cbt | questionnaire | appointment
    title: str
    record: Any
    api_path: str
    attention: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    label: str
    href: str


def _all(session: Session, ctx: RequestContext, kind: RecordKind, patient_id: str) -> list[Any]:
    """Every record of a kind for the patient (each page audited by the store)."""
    found: list[RecordMeta] = []
    cursor: str | None = None
    while len(found) < MAX_RECORDS_PER_KIND:
        page = list_records(session, ctx, kind, ListFilters(limit=LIST_PAGE, patient_id=patient_id, cursor=cursor))
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return found


def _session_thresholds(
    session: Session, tenant_id: str, statuses: Sequence[PlanStatus]
) -> Callable[[KetamineAdministrationPublic], SafetyThresholds]:
    """The safety thresholds a session is read against: its enrolment's protocol (the tenant's own, or a built-in),
    the patient's first enrolment's for a session filed without one, the defaults without any enrolment."""
    by_enrollment: dict[str, SafetyThresholds] = {}
    for status in statuses:
        protocol = find_protocol(session, tenant_id, status.protocol_id, status.protocol_version)
        by_enrollment[status.enrollment_id] = protocol.safety if protocol is not None else SafetyThresholds()
    fallback = next(iter(by_enrollment.values()), SafetyThresholds())

    def thresholds(record: KetamineAdministrationPublic) -> SafetyThresholds:
        return by_enrollment.get(record.enrollment_id or "", fallback)

    return thresholds


def _ketamine_entry(record: KetamineAdministrationPublic, safety: SafetyThresholds) -> TimelineEntry:
    dose = f"{record.dose_mg:g} mg" if record.dose_mg is not None else ""
    if record.dose_mg_per_kg is not None:
        dose += f" ({record.dose_mg_per_kg:.2g} mg/kg)"
    title = f"{record.drug.capitalize()} {record.route}" + (f", {dose}" if dose else "")
    attention = []
    for reading in record.vital_signs:
        systolic, diastolic = reading.systolic_mmhg, reading.diastolic_mmhg
        if (
            systolic is not None
            and diastolic is not None
            and (systolic >= safety.bp_urgent_systolic or diastolic >= safety.bp_urgent_diastolic)
        ):
            attention.append(f"BP {reading.systolic_mmhg}/{reading.diastolic_mmhg}")
    if record.sedation_score is not None and record.sedation_score <= safety.max_sedation_score:
        attention.append(f"MOAA/S {record.sedation_score}")
    attention.extend("serious adverse event" for e in record.adverse_events if e.serious)
    return TimelineEntry(
        f"rec-{record.id}", record.started_at, "ketamine", title, record,
        f"/api/v1/ketamine-administrations/{record.id}", attention,
    )  # fmt: skip


def _cbt_entry(record: CbtSessionPublic) -> TimelineEntry:
    # A psychotherapy visit the EHR did not code as CBT says so; it still counts toward the CBT course.
    noun = "CBT session" if record.modality == "cbt" else "Psychotherapy session (CBT not stated)"
    title = f"{noun} {record.session_number}: {record.status.replace('-', ' ')}"
    attention: list[str] = [record.status] if record.status in ("no-show", "cancelled") else []
    return TimelineEntry(
        f"rec-{record.id}", record.planned_start, "cbt", title, record, f"/api/v1/cbt-sessions/{record.id}", attention
    )


def _appointment_entry(record: AppointmentPublic) -> TimelineEntry:
    what = "CBT session" if record.service == "cbt" else "Ketamine/esketamine session"
    title = f"{what} appointment: {'no-show' if record.status == 'noshow' else record.status.replace('-', ' ')}"
    attention: list[str] = ["no-show"] if record.status == "noshow" else []
    return TimelineEntry(
        f"rec-{record.id}", record.start, "appointment", title, record, f"/api/v1/appointments/{record.id}", attention
    )


def _questionnaire_entry(record: QuestionnaireResponsePublic) -> TimelineEntry:
    instrument = INSTRUMENTS.get(record.instrument)
    name = instrument.key.upper() if instrument else record.instrument
    score = record.score
    title = f"{name}: {score.total:g}" if score.total is not None else f"{name}: not scored (incomplete)"
    if score.severity:
        title += f" ({score.severity})"
    attention = [f.reason for f in score.safety_findings]
    return TimelineEntry(
        f"rec-{record.id}", record.authored_at, "questionnaire", title, record,
        f"/api/v1/questionnaire-responses/{record.id}", attention,
    )  # fmt: skip


def _charts(
    responses: Sequence[QuestionnaireResponsePublic],
    administrations: Sequence[KetamineAdministrationPublic],
    statuses: Sequence[PlanStatus],
    zone: tzinfo,
) -> list[dict[str, Any]]:
    markers = [
        ChartMarker(
            a.started_at, f"{a.drug.capitalize()} session {a.started_at.astimezone(zone):%d %b %Y}", f"rec-{a.id}"
        )
        for a in administrations
        if a.status != "not-done"
    ]
    baselines: dict[str, float] = {}
    missed: dict[str, tuple[datetime, ...]] = {}
    for status in reversed(statuses):  # the most recent enrollment wins
        for outcome in status.outcomes:
            if outcome.baseline is not None:
                baselines[outcome.instrument] = outcome.baseline.total
        due = status.next_due.measurement
        if due is not None and due.missed and status.outcomes:  # the schedule is of the primary instrument
            missed[status.outcomes[0].instrument] = due.missed
    by_instrument: dict[str, list[ChartPoint]] = {}
    for response in responses:
        if response.score.total is not None and response.status != "in-progress":
            point = ChartPoint(response.authored_at, response.score.total, f"rec-{response.id}")
            by_instrument.setdefault(response.instrument, []).append(point)
    charts = []
    for key, points in sorted(by_instrument.items()):
        instrument = INSTRUMENTS.get(key)
        if instrument is None or not instrument.has_total:
            continue
        charts.append(
            {
                "title": instrument.title,
                "key": key,
                "svg": score_chart(
                    instrument,
                    points,
                    markers,
                    baseline=baselines.get(key),
                    today=now_utc(),
                    tz=zone,
                    missed=missed.get(key, ()),
                ),
                "missed": missed.get(key, ()),
                "points": sorted(points, key=lambda p: p.at),
                "baseline": baselines.get(key),
                "remission": str(instrument.remission) if instrument.remission else None,
            }
        )
    return charts


def _evidence(
    record_ids: Sequence[str], timeline: dict[str, TimelineEntry], enrollment_id: str, zone: tzinfo
) -> list[Evidence]:
    found = []
    for record_id in record_ids:
        entry = timeline.get(record_id)
        if entry is not None:
            found.append(Evidence(f"{entry.title} — {entry.at.astimezone(zone):%d %b %Y}", f"#{entry.anchor}"))
        elif record_id == enrollment_id:
            found.append(Evidence("the enrollment", f"#enrollment-{enrollment_id}"))
        else:
            found.append(Evidence(f"record {record_id[:8]}", f"#rec-{record_id}"))
    return found


def patient_values(session: Session, ctx: RequestContext, patient_id: str, zone: tzinfo) -> dict[str, Any]:
    patient = read_record(session, ctx, PATIENTS, patient_id)
    assert isinstance(patient, PatientPublic)
    plan = read_plan_status(session, ctx, patient_id, None)
    administrations: list[KetamineAdministrationPublic] = _all(session, ctx, KETAMINE_ADMINISTRATIONS, patient_id)
    cbt_sessions: list[CbtSessionPublic] = _all(session, ctx, CBT_SESSIONS, patient_id)
    responses: list[QuestionnaireResponsePublic] = _all(session, ctx, QUESTIONNAIRE_RESPONSES, patient_id)
    appointments: list[AppointmentPublic] = _all(session, ctx, APPOINTMENTS, patient_id)
    safety = _session_thresholds(session, ctx.tenant_id, plan.statuses)
    entries = (
        [_ketamine_entry(a, safety(a)) for a in administrations]
        + [_cbt_entry(c) for c in cbt_sessions]
        + [_questionnaire_entry(q) for q in responses]
        + [_appointment_entry(a) for a in appointments if a.status != "entered-in-error"]
    )
    entries.sort(key=lambda e: e.at, reverse=True)
    by_id = {e.record.id: e for e in entries}
    enrollments = []
    for status in plan.statuses:
        reasons = [
            {"reason": r, "evidence": _evidence(r.record_ids, by_id, status.enrollment_id, zone)}
            for r in sorted(status.reasons, key=lambda r: (not r.open, _severity_rank(r.severity), r.since))
        ]
        due = [d for d in (status.next_due.ketamine_session, status.next_due.cbt_session,
                           status.next_due.measurement, status.next_due.rems_form) if d is not None]  # fmt: skip
        enrollments.append(
            {
                "status": status,
                "look": labels.status_look(status.status),
                "enrollment_note": labels.enrollment_note(status.status, status.enrollment_status),
                "reasons": reasons,
                "urgent_open": [r for r in status.reasons if r.open and r.needs_acknowledgement],
                "due": sorted(due, key=lambda d: d.due_at),
            }
        )
    return {
        "patient": patient,
        "name": fm.display_name(patient),
        "enrollments": enrollments,
        "timeline": entries,
        "charts": _charts(responses, administrations, plan.statuses, zone),
        "sync": patient_sync_state(session, ctx.tenant_id, patient_id),
        # DESIGN.md: a policy refusal (consent, break-the-glass) is never retried and is shown to coordinators.
        "policy_refusals": policy_refusals(session, ctx.tenant_id, patient_id),
        "can_acknowledge": ctx.principal.role in CLINICIANS,
        "under_break_glass": patient_id in ctx.break_glass_patients,
        "patient_clock": _patient_clock(patient.time_zone),
        "notes": list_notes(session, ctx, patient_id).notes,
        "me": ctx.principal.subject,
        "note_max": NOTE_MAX_LENGTH,
        "note_error": None,  # a refused note form shows the patient page again with these (note_forms.py)
        "note_form": {},
        "invitations": [
            public_invitation(i, now_utc()) for i in patient_invitations(session, ctx.tenant_id, patient_id)
        ],
        "self_report_instruments": [(key, INSTRUMENTS[key].title) for key in SELF_REPORT_INSTRUMENTS],
        "new_link": None,  # the link of an invitation just made with channel "none" (invitation_forms.py), once
    }


def _patient_clock(time_zone: str | None) -> str | None:
    """The patient's own time of day now ("Tue 09:14 America/Chicago"): is it a sensible hour to call?"""
    if time_zone is None:
        return None
    return f"{now_utc().astimezone(ZoneInfo(time_zone)):%a %H:%M} {time_zone}"


def _severity_rank(severity: str) -> int:
    return {"urgent": 0, "warning": 1}.get(severity, 2)


def _notice(acknowledged: FlagAcknowledgement | None, statuses: list[dict[str, Any]]) -> str | None:
    """The confirmation after acknowledging: only what the server stored (see just_acknowledged)."""
    if acknowledged is None:
        return None
    now = statuses[0]["look"].label if statuses else "unknown"
    return (
        f"Acknowledged: {labels.flag_label(acknowledged.flag_code)}, by {acknowledged.acknowledged_by}. "
        f"Plan status: {now}."
    )


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request,
    patient_id: str,
    session: SessionDep,
    web_session: SignedIn,
    acknowledgement: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    ctx = context_for_page(
        request, web_session, session, "read", Kind.PATIENTS, CARE_PAGES, scopes=PATIENT_PAGE, patient_id=patient_id
    )
    values = patient_values(session, ctx, patient_id, page_zone(request))
    values["title"] = values["name"]
    acknowledged = just_acknowledged(session, ctx, patient_id, acknowledgement) if acknowledgement else None
    values["notice"] = _notice(acknowledged, values["enrollments"])
    values["ack_error"] = None
    values["ack_form"] = {}
    return render(request, "patient.html", values)


@router.post("/patients/{patient_id}/break-the-glass")
def break_the_glass(
    request: Request,
    patient_id: str,
    session: SessionDep,
    web_session: SignedIn,
    reason: Annotated[str, Form(max_length=1000)] = "",
    minutes: Annotated[int, Form(ge=1, le=1440)] = 60,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx = context_for_form(
        request,
        web_session,
        session,
        csrf_token,
        "create",
        "break-glass",
        CLINICIANS,
        scopes=needs("Consent.c"),
        patient_id=patient_id,
    )
    try:
        grant = BreakGlassRequest(reason=reason, minutes=minutes)
    except ValidationError as error:
        require_restricted_patient(session, ctx, patient_id)  # another tenant's patient is missing, as everywhere
        problem = "; ".join(p.message for p in validation_problems(error))
        return restricted_page(request, patient_id, problem=f"{problem[:1].upper()}{problem[1:]}.", reason=reason)
    start_break_glass(session, ctx, patient_id, grant)
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


@router.post("/patients/{patient_id}/acknowledgements")
def acknowledge(
    request: Request,
    patient_id: str,
    session: SessionDep,
    web_session: SignedIn,
    enrollment_id: Annotated[str, Form(max_length=64)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
    occurrence_id: Annotated[str, Form(max_length=128)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx = context_for_form(
        request,
        web_session,
        session,
        csrf_token,
        "create",
        "flag-acknowledgements",
        CLINICIANS,
        scopes=(*needs("Flag.u"), *PATIENT_PAGE),  # it shows the page again on a refused note
        patient_id=patient_id,
    )
    if not note.strip():
        values = patient_values(session, ctx, patient_id, page_zone(request))
        values.update(
            title=values["name"],
            notice=None,
            ack_error="Write what was done before acknowledging (the note is required).",
            ack_form={"code": code, "occurrence_id": occurrence_id},
        )
        return render(request, "patient.html", values, status_code=422)
    try:
        acknowledgement = FlagAcknowledgementRequest(
            enrollment_id=enrollment_id, code=code, occurrence_id=occurrence_id, note=note
        )
    except ValidationError as error:
        raise InvalidRequest(validation_problems(error)) from None
    acknowledge_flag(session, ctx, patient_id, acknowledgement)
    assert ctx.intent is not None and ctx.intent.record_id is not None  # the stored acknowledgement's id
    # Only the id travels in the URL; the page shows what was stored under it.
    return RedirectResponse(f"/patients/{patient_id}?acknowledgement={ctx.intent.record_id}#flags", status_code=303)
