"""Sending a questionnaire from the pages: the patient page's form and the worklist's "Send PHQ-9 now".

CSRF-checked and audited like every page form (context_for_form); the same service function as the API
(self_report.invitations.send_invitation). Sent on a channel, the browser goes back to the page; with "none"
(the coordinator gives the link by phone or in person) the patient page shows the link once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from service import clock
from service.auth.scopes import needs
from service.self_report import invitations
from service.self_report.invitations import CHANNELS, INVITATION_KIND, Channel
from service.web.deps import CARE_PAGES, PATIENT_PAGE, SessionDep, SignedIn, context_for_form, page_zone
from service.web.patient_page import patient_values
from service.web.rendering import WebRoute, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
SENDS = (*needs("Task.cu"), *PATIENT_PAGE)
Small = Annotated[str, Form(max_length=64)]
Token = Annotated[str, Form(max_length=200)]


def _send(request: Request, session: SessionDep, web_session: SignedIn, patient_id: str, instrument: str,
          channel: str, csrf_token: str) -> invitations.SentInvitation:  # fmt: skip
    ctx = context_for_form(request, web_session, session, csrf_token, "create", INVITATION_KIND, CARE_PAGES,
                           scopes=SENDS, patient_id=patient_id)  # fmt: skip
    chosen: Channel = channel if channel in CHANNELS else "invalid"  # type: ignore[assignment]
    now = clock.now_utc()
    today = now.astimezone(request.state.hospital_zone).date()
    return invitations.send_invitation(session, ctx, patient_id, instrument, today, chosen, now=now)


@router.post("/patients/{patient_id}/invitations")
def send_from_patient_page(
    request: Request,
    patient_id: str,
    session: SessionDep,
    web_session: SignedIn,
    instrument: Small = "phq-9",
    channel: Small = "preferred",
    csrf_token: Token = "",
) -> Response:
    sent = _send(request, session, web_session, patient_id, instrument, channel, csrf_token)
    if channel != "none":
        return RedirectResponse(f"/patients/{patient_id}#invitations", status_code=303)
    ctx = request.state.ctx
    values = patient_values(session, ctx, patient_id, page_zone(request))
    values.update(title=values["name"], notice=None, ack_error=None, ack_form={},
                  new_link=sent.link(ctx.settings.public_base_url))  # fmt: skip
    return render(request, "patient.html", values, status_code=201)


@router.post("/worklist/invitations")
def send_from_worklist(
    request: Request,
    session: SessionDep,
    web_session: SignedIn,
    patient_id: Small = "",
    instrument: Small = "phq-9",
    view: Annotated[str, Form(max_length=16)] = "mine",
    csrf_token: Token = "",
) -> Response:
    _send(request, session, web_session, patient_id, instrument, "preferred", csrf_token)
    shown = "team" if view == "team" else "mine"
    return RedirectResponse(f"/worklist?view={shown}&notice=questionnaire", status_code=303)
