"""The REMS monitoring form of an esketamine session, prefilled, to print or download as PDF; and the form that
records when the clinic submitted it (Tandem never submits it to the REMS programme itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

import fhir_mappings as fm
from service.auth.scopes import needs
from service.clock import now_utc
from service.record_store.kinds import CLINICIANS
from service.rems.pdf import form_pdf
from service.rems.session_form import SESSION_KIND, read_form, record_submission
from service.web.deps import SessionDep, SignedIn, context_for_form, context_for_page, page_zone
from service.web.rendering import WebRoute, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
FORM = "/patients/{patient_id}/sessions/{session_id}/rems-form"
READS = needs("Patient.r", "MedicationAdministration.r")
WRITES = needs("Patient.r", "MedicationAdministration.ru")


@router.get(FORM)
def rems_form_page(
    request: Request,
    patient_id: str,
    session_id: str,
    session: SessionDep,
    web_session: SignedIn,
    recorded: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    ctx = context_for_page(request, web_session, session, "read", SESSION_KIND, CLINICIANS, scopes=READS,
                           patient_id=patient_id)  # fmt: skip
    form, record, patient = read_form(session, ctx, patient_id, session_id)
    values = {
        "title": "REMS monitoring form",
        "form": form,
        "record": record,
        "patient": patient,
        "name": fm.display_name(patient),
        "recorded": bool(recorded),
        # the datetime-local field's default: now, in the reader's zone (the field carries no offset)
        "now_local": f"{now_utc().astimezone(page_zone(request)):%Y-%m-%dT%H:%M}",
    }
    return render(request, "rems_form.html", values)


@router.get(f"{FORM}.pdf")
def rems_form_pdf(
    request: Request, patient_id: str, session_id: str, session: SessionDep, web_session: SignedIn
) -> Response:
    ctx = context_for_page(request, web_session, session, "read", SESSION_KIND, CLINICIANS, scopes=READS,
                           patient_id=patient_id)  # fmt: skip
    form, record, patient = read_form(session, ctx, patient_id, session_id)
    body = form_pdf(form, patient_name=fm.display_name(patient), zone=request.state.hospital_zone)
    filename = f"rems-form-{record.started_at:%Y-%m-%d}.pdf"  # no patient data in the name
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})  # fmt: skip


@router.post(f"{FORM}/submission")
def record_rems_submission(
    request: Request,
    patient_id: str,
    session_id: str,
    session: SessionDep,
    web_session: SignedIn,
    submitted_at: Annotated[str, Form(max_length=40)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ctx = context_for_form(request, web_session, session, csrf_token, "update", SESSION_KIND, CLINICIANS,
                           scopes=WRITES, patient_id=patient_id)  # fmt: skip
    record_submission(session, ctx, session_id, _local_instant(submitted_at, page_zone(request)), patient_id=patient_id)
    return RedirectResponse(f"/patients/{patient_id}/sessions/{session_id}/rems-form?recorded=1", status_code=303)


def _local_instant(value: str, zone: ZoneInfo) -> datetime | None:
    """The form's date and time (a datetime-local field: no offset) as an instant in the reader's zone; None when
    it is not a date and time (refused by the service once the session is found)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
