"""The worklist page: today's tasks in order, with outreach, snooze, escalation and done on each (forms with CSRF
tokens, over the same service functions as /api/v1/worklist)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session

from service.audit_trail import RequestContext, record_refusal
from service.auth.scopes import needs
from service.clock import now_utc
from service.errors import InvalidRequest, RecordConflict, validation_problems
from service.records.audit import AuditAction
from service.web import labels
from service.web.deps import CARE_PAGES, SessionDep, SignedIn, context_for_form, context_for_page
from service.web.rendering import WebRoute, render
from service.web.session_cookie import WebSession
from service.worklist import actions
from service.worklist.tasks import View, read_worklist

router = APIRouter(route_class=WebRoute, include_in_schema=False)
WORKLIST_PAGE = needs("Patient.s", "CarePlan.s", "Flag.s", "Task.s")
# The forms show the list again on a refusal, so they need what the page reads too.
WORKLIST_FORM = (*needs("Task.u"), *WORKLIST_PAGE)
TIERS = {"urgent": "Urgent", "overdue": "Overdue", "due_today": "Due today"}
CHANNELS = {"phone": "Phone", "sms": "SMS", "email": "E-mail", "letter": "Letter", "in_person": "In person"}
OUTCOMES = {"reached": "Reached", "voicemail": "Voicemail", "no_answer": "No answer", "wrong_number": "Wrong number"}
# What the page confirms after a form: fixed words chosen by a code in the URL, never text from the URL.
NOTICES = {
    "outreach": "Outreach logged.",
    "snoozed": "Snoozed: the task is back on the list on its date.",
    "escalated": "Escalated: the clinician sees it on their worklist.",
    "done": "Done: the task is off today's list.",
    "questionnaire": "Questionnaire sent: the patient gets a link by their preferred channel (listed on their page).",
}
Action = Literal["outreach", "snooze", "escalation", "done"]


def _view(value: str | None) -> View:
    return "team" if value == "team" else "mine"


def _page(
    request: Request,
    session: Session,
    ctx: RequestContext,
    view: View,
    *,
    notice: str | None = None,
    error: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    zone = actions.tenant_zone(session, ctx.tenant_id)
    worklist = read_worklist(session, ctx, view=view, now=now_utc(), zone=zone)
    values: dict[str, Any] = {
        "title": "Worklist",
        "worklist": worklist,
        "view": view,
        "tiers": TIERS,
        "channels": CHANNELS,
        "outcomes": OUTCOMES,
        "clinicians": actions.escalation_choices(session, ctx.tenant_id),
        "enrollment_notes": {t.id: labels.enrollment_note("at_risk", t.enrollment_status) for t in worklist.tasks},
        "notice": NOTICES.get(notice or ""),
        "error": error,
        "role": ctx.principal.role,
    }
    return render(request, "worklist.html", values, status_code=status_code)


@router.get("/worklist")
def worklist_page(
    request: Request, session: SessionDep, web_session: SignedIn, view: str | None = None, notice: str | None = None
) -> Response:
    ctx = context_for_page(request, web_session, session, "list", "worklist", CARE_PAGES, scopes=WORKLIST_PAGE)
    return _page(request, session, ctx, _view(view), notice=notice)


def _act(
    request: Request,
    session: Session,
    web_session: WebSession,
    csrf_token: str,
    task_id: str,
    view: str | None,
    action: Action,
    run: Any,
) -> Response:
    """Run one action; a refusal shows the list again with the reason beside the task (422 or 409)."""
    audit_action: AuditAction = "create" if action == "outreach" else "update"
    kind = "outreach-attempts" if action == "outreach" else "worklist-tasks"
    ctx = context_for_form(
        request, web_session, session, csrf_token, audit_action, kind, CARE_PAGES, scopes=WORKLIST_FORM
    )
    shown = _view(view)
    try:
        notice = run(ctx)
    except ValidationError as error:
        words = "; ".join(f"{p.field}: {p.message}" for p in validation_problems(error))
        return _refused(request, session, ctx, shown, (task_id, words), 422)
    except InvalidRequest as error:
        words = "; ".join(f"{p.field}: {p.message}" for p in error.problems)
        return _refused(request, session, ctx, shown, (task_id, words), 422)
    except RecordConflict as error:
        return _refused(request, session, ctx, shown, (task_id, str(error)), 409)
    return RedirectResponse(f"/worklist?view={shown}&notice={notice}", status_code=303)


def _refused(
    request: Request, session: Session, ctx: RequestContext, view: View, error: tuple[str, str], status_code: int
) -> Response:
    """The refused attempt is audited (as an API refusal is), then the list is shown with the reason."""
    session.rollback()
    record_refusal(session, ctx, status_code)
    return _page(request, session, ctx, view, error=error, status_code=status_code)


TaskId = Annotated[str, Form(max_length=64)]
Csrf = Annotated[str, Form(max_length=200)]
ViewField = Annotated[str | None, Form(max_length=8)]


@router.post("/worklist/outreach")
def outreach(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    task_id: TaskId = "",
    channel: Annotated[str, Form(max_length=32)] = "",
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    view: ViewField = None,
    csrf_token: Csrf = "",
) -> Response:
    def run(ctx: RequestContext) -> str:
        body = actions.OutreachRequest.model_validate({"channel": channel, "outcome": outcome, "note": note})
        actions.log_outreach(session, ctx, task_id, body)
        return "outreach"

    return _act(request, session, web_session, csrf_token, task_id, view, "outreach", run)


@router.post("/worklist/snooze")
def snooze(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    task_id: TaskId = "",
    until: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    view: ViewField = None,
    csrf_token: Csrf = "",
) -> Response:
    def run(ctx: RequestContext) -> str:
        body = actions.SnoozeRequest.model_validate({"until": until, "reason": reason})
        actions.snooze_task(session, ctx, task_id, body)
        return "snoozed"

    return _act(request, session, web_session, csrf_token, task_id, view, "snooze", run)


@router.post("/worklist/escalation")
def escalate(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    task_id: TaskId = "",
    clinician_id: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    view: ViewField = None,
    csrf_token: Csrf = "",
) -> Response:
    def run(ctx: RequestContext) -> str:
        body = actions.EscalationRequest.model_validate({"clinician_id": clinician_id, "note": note})
        actions.escalate_task(session, ctx, task_id, body)
        return "escalated"

    return _act(request, session, web_session, csrf_token, task_id, view, "escalation", run)


@router.post("/worklist/done")
def done(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    task_id: TaskId = "",
    view: ViewField = None,
    csrf_token: Csrf = "",
) -> Response:
    def run(ctx: RequestContext) -> str:
        actions.complete_task(session, ctx, task_id)
        return "done"

    return _act(request, session, web_session, csrf_token, task_id, view, "done", run)
