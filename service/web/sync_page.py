"""The EHR sync page for administrators: per target counts, recent errors, dead letters and their replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import RedirectResponse

from service.api.deps import RowNumber
from service.clock import now_utc
from service.messaging.overview import STATUSES as MESSAGE_STATUSES
from service.sync.heartbeat import read_workers
from service.web.deps import ADMIN_PAGES, SessionDep, SignedIn, context_for_form, context_for_page, settings_of
from service.web.rendering import WebRoute, render
from service.web.sync_admin import (
    OUTBOX_STATUSES,
    read_sync_overview,
    replay_dead_letter,
    replay_patient_message,
    retry_quarantine,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get("/sync")
def sync_page(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    replayed: str | None = None,
    replayed_message: str | None = None,
    accepted: str | None = None,
    refused: str | None = None,
) -> Response:
    ctx = context_for_page(request, web_session, session, "list", "sync-outbox", ADMIN_PAGES, scopes=None)
    overview = read_sync_overview(session, ctx)
    dead_after = settings_of(request).sync_worker_dead_after_seconds
    workers = read_workers(session, ctx.tenant_id, now=now_utc(), dead_after_seconds=dead_after)
    values = {
        "workers": workers,
        "title": "EHR sync",
        "overview": overview,
        "statuses": OUTBOX_STATUSES,
        "message_statuses": MESSAGE_STATUSES,
        "notice": _notice(replayed, accepted, refused, replayed_message),
    }
    return render(request, "sync.html", values)


@router.post("/sync/dead-letters/{message_id}/replay")
def replay(
    request: Request,
    message_id: RowNumber,
    session: SessionDep,
    web_session: SignedIn,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx = context_for_form(request, web_session, session, csrf_token, "update", "sync-outbox", ADMIN_PAGES, scopes=None)
    replay_dead_letter(session, ctx, message_id)
    return RedirectResponse(f"/sync?replayed={message_id}", status_code=303)


@router.post("/sync/patient-messages/{patient_message_id}/replay")
def replay_message(
    request: Request,
    patient_message_id: RowNumber,
    session: SessionDep,
    web_session: SignedIn,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx = context_for_form(
        request, web_session, session, csrf_token, "update", "patient-messages", ADMIN_PAGES, scopes=None
    )
    replay_patient_message(session, ctx, patient_message_id)
    return RedirectResponse(f"/sync?replayed_message={patient_message_id}", status_code=303)


@router.post("/sync/targets/{target_id}/quarantine/retry")
def retry(
    request: Request,
    target_id: Annotated[str, Path(max_length=36)],
    session: SessionDep,
    web_session: SignedIn,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx = context_for_form(request, web_session, session, csrf_token, "update", "sync-outbox", ADMIN_PAGES, scopes=None)
    result = retry_quarantine(session, ctx, target_id)
    return RedirectResponse(f"/sync?accepted={len(result.accepted)}&refused={len(result.refused)}", status_code=303)


def _notice(
    replayed: str | None, accepted: str | None, refused: str | None, replayed_message: str | None = None
) -> str | None:
    if replayed_message and replayed_message.isdigit():
        return f"Patient message {replayed_message} is queued again; it is sent at the next sweep."
    if replayed and replayed.isdigit():
        return f"Message {replayed} is queued again."
    if accepted and accepted.isdigit() and refused and refused.isdigit():
        return f"Quarantine retried: {accepted} taken in, {refused} still refused."
    return None
