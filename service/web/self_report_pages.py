"""The patient's questionnaire pages at /r/{token}: no account, one question per screen, no JavaScript needed.

Authenticated by the link's token alone (service/self_report/form.py), never by a bearer token or the staff
session cookie; the token in the path is also what makes a forged form post impossible (a third party cannot
post to a link it does not know), so these forms carry no CSRF field. Every answer is `noindex`, `no-store`,
under the pages' CSP, with nothing from another origin and no patient name anywhere (title, URL, page).
An unusable link (unknown, tampered, expired, used, cancelled) gets a kind page saying so and offering nothing
else: 404 for unknown, 410 for the rest, nothing stored. Errors on these routes (a body over the cap, a bad form)
answer with the same patient-facing page, not the staff error page.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from service import clock
from service.api.surfaces import Surface, SurfaceRoute
from service.errors import TandemError
from service.records.patient import Patient
from service.records.tenant import Tenant
from service.self_report import form
from service.self_report.invitations import DEFAULT_CRISIS_TEXT, hospital_settings
from service.self_report.tables import Invitation
from service.self_report.text import ENGLISH, Translation, translation
from service.web.deps import SessionDep
from service.web.rendering import environment, with_security_headers

PATIENT_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Cache-Control": "no-store", "Pragma": "no-cache"}
LinkId = Annotated[str, Form(max_length=64)]
AnswerCode = Annotated[str, Form(max_length=64)]


def _page(template: str, values: Mapping[str, Any], status_code: int = 200) -> HTMLResponse:
    text: Translation = values.get("t") or ENGLISH
    body = environment.get_template(f"self_report/{template}").render(
        **{"lang": text.language, **values, "t": text.page}
    )
    response = HTMLResponse(body, status_code=status_code)
    for name, value in PATIENT_HEADERS.items():
        response.headers[name] = value
    return response


def _problem_page(request: Request, error: TandemError) -> Response:
    """Any refusal on these routes, in the patient's words (the staff pages' words mean nothing here)."""
    key = "too_large" if error.status_code == 413 else "error"
    message = ENGLISH.page[key] if error.status_code in (400, 413, 422) else ENGLISH.page["error"]
    values = {"heading": ENGLISH.page["refused_title"], "message": message}
    return with_security_headers(_page("unusable.html", values, status_code=error.status_code))


SELF_REPORT_SURFACE = Surface("self-report", _problem_page)


class SelfReportRoute(SurfaceRoute):
    surface = SELF_REPORT_SURFACE

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return with_security_headers(await handler(request))

        return route


router = APIRouter(route_class=SelfReportRoute, include_in_schema=False)


def _unusable(error: form.LinkUnusable) -> HTMLResponse:
    text = ENGLISH
    return _page("unusable.html", {"heading": text.page["unusable_title"], "message": text.page[error.kind]},
                 status_code=error.status_code)  # fmt: skip


def _open(request: Request, session: Session, token: str) -> tuple[Invitation, Any]:
    invitation = form.find_invitation(session, token, now=clock.now_utc())
    request_id = getattr(request.state, "request_id", None) or str(uuid.uuid4())
    ctx = form.patient_context(invitation, request.app.state.settings, request_id)
    request.state.ctx = ctx  # a failure from here on is audited against the patient
    return invitation, ctx


def _values(session: Session, invitation: Invitation, token: str) -> dict[str, Any]:
    instrument = form.instrument_of(invitation)
    codes = form.saved_codes(invitation)
    settings = hospital_settings(session, invitation.tenant_id)
    text = translation(invitation.language)
    patient = session.get(Patient, invitation.patient_id)
    tenant = session.get(Tenant, invitation.tenant_id)
    zone = ZoneInfo(
        (patient.time_zone if patient and patient.time_zone else None) or (tenant.time_zone if tenant else "UTC")
    )
    return {
        "t": text,
        "token": token,
        "instrument": instrument,
        "questions": form.questions(instrument, codes),
        "crisis": form.needs_help_now(instrument, codes),
        "crisis_text": settings.crisis_text,
        "crisis_is_default": settings.crisis_text == DEFAULT_CRISIS_TEXT,
        "staff_will_call": settings.staff_will_call,
        "saved_note": text.page["saved_note"].format(expires=_local(invitation.expires_at, zone)),
        "item_text": lambda item: text.item_text.get(instrument.key, {}).get(item.link_id, item.text),
        "answer_text": lambda item, option: text.answer_text.get(instrument.key, {}).get(
            f"{item.link_id}|{option.code}", option.display
        ),
        "instruction": lambda item: text.instruction(instrument.key, item.link_id),
    }


def _local(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return f"{local.day} {local:%B %Y, %H:%M}"


def _question_page(values: dict[str, Any], number: int | None, *, error: str | None = None,
                   status_code: int = 200) -> HTMLResponse:  # fmt: skip
    asked: list[form.Question] = values["questions"]
    if number is None:
        question = next((q for q in asked if q.answer_code is None), None)
    else:
        question = next((q for q in asked if q.number == number), None)
    if question is None:
        return _page("review.html", {**values, "missing": set()}, status_code=status_code)
    return _page("question.html", {**values, "question": question, "count": len(asked), "error": error},
                 status_code=status_code)  # fmt: skip


@router.get("/r/{token}")
def show(request: Request, token: str, session: SessionDep, q: int | None = None) -> Response:
    try:
        invitation, ctx = _open(request, session, token)
    except form.LinkUnusable as error:
        return _unusable(error)
    form.mark_opened(session, ctx, invitation, now=clock.now_utc())
    return _question_page(_values(session, invitation, token), q)


@router.post("/r/{token}")
def answer(
    request: Request, token: str, session: SessionDep, link_id: LinkId = "", answer: AnswerCode = ""
) -> Response:
    try:
        invitation, ctx = _open(request, session, token)
    except form.LinkUnusable as error:
        return _unusable(error)
    try:
        crisis = form.save_answer(session, ctx, invitation, link_id, answer, now=clock.now_utc())
    except form.AnswerRefused as refused:
        values = _values(session, invitation, token)
        number = next((q.number for q in values["questions"] if q.link_id == refused.link_id), None)
        return _question_page(values, number, error=values["t"].page[refused.reason], status_code=422)
    if crisis:
        # No redirect: the crisis resources are on the very page this answer returns (no JavaScript needed).
        return _question_page(_values(session, invitation, token), None)
    return RedirectResponse(f"/r/{token}", status_code=303)


@router.post("/r/{token}/submit")
def submit(request: Request, token: str, session: SessionDep) -> Response:
    try:
        invitation, ctx = _open(request, session, token)
    except form.LinkUnusable as error:
        return _unusable(error)
    values = _values(session, invitation, token)
    try:
        form.submit(session, ctx, invitation, now=clock.now_utc())
    except form.AnswersMissing as missing:
        return _page("review.html", {**values, "missing": set(missing.link_ids)}, status_code=422)
    return _page("done.html", values)
