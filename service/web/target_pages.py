"""The EHR targets on the admin sync page: add, edit, disable and enable a target, test its connection, backfill
it, replay its dead and failed rows, and one outbox message's detail. Admins only; every form carries the CSRF
token (context_for_form) and every action is audited by the service function it calls (service/web/target_admin.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import RedirectResponse

from service.api.deps import RowNumber
from service.audit_trail import RequestContext, record_refusal
from service.errors import InvalidRequest, RecordConflict, TandemError, VersionMismatch
from service.sync.connection_check import ConnectionReport
from service.web.deps import ADMIN_PAGES, SessionDep, SignedIn, context_for_form, context_for_page
from service.web.rendering import WebRoute, render
from service.web.target_admin import (
    backfill_target,
    change_target,
    create_target,
    read_message,
    read_target,
    replay_target,
    set_enabled,
    try_connection,
)
from service.web.target_form import AUTH_KINDS, LABELS, PULL_KINDS, PUSH_KINDS, TargetForm, field_errors

router = APIRouter(route_class=WebRoute, include_in_schema=False)
TargetId = Annotated[str, Path(max_length=36)]
CsrfToken = Annotated[str, Form(max_length=200)]
FORM_REFUSALS = (InvalidRequest, RecordConflict, VersionMismatch)


@router.get("/sync/targets/new")
def new_target(request: Request, session: SessionDep, web_session: SignedIn) -> Response:
    context_for_page(request, web_session, session, "read", "sync/targets", ADMIN_PAGES, scopes=None)
    return _form_page(request, TargetForm(enabled="on"), target_id=None)


@router.post("/sync/targets")
def add_target(
    request: Request, form: Annotated[TargetForm, Form()], session: SessionDep, web_session: SignedIn
) -> Response:
    ctx = context_for_form(
        request, web_session, session, form.csrf_token, "create", "sync/targets", ADMIN_PAGES, scopes=None
    )
    try:
        created = create_target(session, ctx, form.target_body(with_enabled=True), form.token)
    except FORM_REFUSALS as error:
        return _refused_form(request, session, ctx, form, error, target_id=None)
    return RedirectResponse(f"/sync/targets/{created.id}?saved=1", status_code=303)


@router.get("/sync/targets/{target_id}")
def target_page(
    request: Request,
    target_id: TargetId,
    session: SessionDep,
    web_session: SignedIn,
    saved: str | None = None,
    backfilled: str | None = None,
    skipped: str | None = None,
    replayed: str | None = None,
) -> Response:
    ctx = context_for_page(request, web_session, session, "read", "sync/targets", ADMIN_PAGES, scopes=None)
    return _target_page(request, session, ctx, target_id, notice=_notice(saved, backfilled, skipped, replayed))


@router.get("/sync/targets/{target_id}/edit")
def edit_target(request: Request, target_id: TargetId, session: SessionDep, web_session: SignedIn) -> Response:
    ctx = context_for_page(request, web_session, session, "read", "sync/targets", ADMIN_PAGES, scopes=None)
    view = read_target(session, ctx, target_id)
    return _form_page(request, TargetForm.of(view.target), target_id=target_id)


@router.post("/sync/targets/{target_id}")
def save_target(
    request: Request,
    target_id: TargetId,
    form: Annotated[TargetForm, Form()],
    session: SessionDep,
    web_session: SignedIn,
) -> Response:
    ctx = context_for_form(
        request, web_session, session, form.csrf_token, "update", "sync/targets", ADMIN_PAGES, scopes=None
    )
    try:
        change_target(session, ctx, target_id, form.target_body(with_enabled=False), form.version, form.token)
    except FORM_REFUSALS as error:
        return _refused_form(request, session, ctx, form, error, target_id=target_id)
    return RedirectResponse(f"/sync/targets/{target_id}?saved=1", status_code=303)


@router.post("/sync/targets/{target_id}/enabled")
def enable_or_disable(
    request: Request,
    target_id: TargetId,
    session: SessionDep,
    web_session: SignedIn,
    enabled: Annotated[str, Form(max_length=5)] = "",
    csrf_token: CsrfToken = "",
) -> Response:
    ctx = context_for_form(
        request, web_session, session, csrf_token, "update", "sync/targets", ADMIN_PAGES, scopes=None
    )
    requeued = set_enabled(session, ctx, target_id, enabled)
    return RedirectResponse(f"/sync/targets/{target_id}?saved=1&replayed={requeued}", status_code=303)


@router.post("/sync/targets/{target_id}/connection-test")
def connection_test(
    request: Request, target_id: TargetId, session: SessionDep, web_session: SignedIn, csrf_token: CsrfToken = ""
) -> Response:
    ctx = context_for_form(request, web_session, session, csrf_token, "read", "sync/targets", ADMIN_PAGES, scopes=None)
    report = try_connection(session, ctx, target_id)
    return _target_page(request, session, ctx, target_id, report=report)


@router.post("/sync/targets/{target_id}/backfill")
def backfill(
    request: Request, target_id: TargetId, session: SessionDep, web_session: SignedIn, csrf_token: CsrfToken = ""
) -> Response:
    ctx = context_for_form(
        request, web_session, session, csrf_token, "update", "sync/targets", ADMIN_PAGES, scopes=None
    )
    try:
        summary = backfill_target(session, ctx, target_id)
    except InvalidRequest as error:
        session.rollback()
        record_refusal(session, ctx, error.status_code)
        problem = "; ".join(p.message for p in error.problems)
        return _target_page(request, session, ctx, target_id, problem=f"Backfill refused: {problem}", status_code=422)
    path = f"/sync/targets/{target_id}?backfilled={summary.total_queued}&skipped={summary.total_skipped}"
    return RedirectResponse(path, status_code=303)


@router.post("/sync/targets/{target_id}/replay")
def replay_all(
    request: Request, target_id: TargetId, session: SessionDep, web_session: SignedIn, csrf_token: CsrfToken = ""
) -> Response:
    ctx = context_for_form(request, web_session, session, csrf_token, "update", "sync-outbox", ADMIN_PAGES, scopes=None)
    count = replay_target(session, ctx, target_id)
    return RedirectResponse(f"/sync/targets/{target_id}?replayed={count}", status_code=303)


@router.get("/sync/messages/{message_id}")
def message_page(request: Request, message_id: RowNumber, session: SessionDep, web_session: SignedIn) -> Response:
    ctx = context_for_page(request, web_session, session, "read", "sync-outbox", ADMIN_PAGES, scopes=None)
    view = read_message(session, ctx, message_id)
    return render(request, "sync_message.html", {"title": f"Message {message_id}", "view": view})


def _target_page(
    request: Request,
    session: SessionDep,
    ctx: RequestContext,
    target_id: str,
    *,
    report: ConnectionReport | None = None,
    notice: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    view = read_target(session, ctx, target_id)
    values = {"title": view.target.name, "view": view, "report": report, "notice": notice, "problem": problem}
    return render(request, "sync_target.html", values, status_code=status_code)


def _form_page(
    request: Request,
    form: TargetForm,
    *,
    target_id: str | None,
    errors: dict[str, str] | None = None,
    summary: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    values: dict[str, Any] = {
        "title": "Edit EHR target" if target_id else "Add an EHR target",
        "form": form,
        "target_id": target_id,
        "errors": errors or {},
        "summary": summary or [],
        "labels": LABELS,
        "auth_kinds": AUTH_KINDS,
        "push_kinds": PUSH_KINDS,
        "pull_kinds": PULL_KINDS,
    }
    return render(request, "sync_target_form.html", values, status_code=status_code)


def _refused_form(
    request: Request,
    session: SessionDep,
    ctx: RequestContext,
    form: TargetForm,
    error: TandemError,
    *,
    target_id: str | None,
) -> Response:
    """The form again, with what was refused beside its field; nothing was stored, the attempt is audited."""
    session.rollback()
    record_refusal(session, ctx, error.status_code)
    if isinstance(error, InvalidRequest):
        errors, summary = field_errors(error.problems)
    elif isinstance(error, VersionMismatch):
        errors, summary = {}, ["The target was changed since this form was opened: reload it and edit it again."]
    else:
        errors, summary = {"name": "Another target of this hospital has this name."}, [error.message]
    form = form.model_copy(update={"token": ""})  # a refused token is not sent back to the browser
    return _form_page(request, form, target_id=target_id, errors=errors, summary=summary, status_code=error.status_code)


def _notice(saved: str | None, backfilled: str | None, skipped: str | None, replayed: str | None) -> str | None:
    """Only counts come from the address, never text (issue #16, finding 9)."""
    if backfilled and backfilled.isdigit() and skipped and skipped.isdigit():
        return f"Backfill: {backfilled} record(s) queued; {skipped} already queued, sent or held by the EHR."
    if saved == "1" and replayed and replayed.isdigit():
        return f"Saved. {replayed} message(s) set aside while the target was disabled are queued again."
    if replayed and replayed.isdigit():
        return f"{replayed} dead or failed message(s) queued again."
    if saved == "1":
        return "Saved."
    return None
