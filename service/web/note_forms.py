"""The note forms on the patient page: write (or amend) a note, change or sign one's own draft.

A refused text (empty, too long) shows the page again with the words beside the form and the text kept; the other
refusals (a signed note, someone else's draft, another hospital's patient) are the error page, as on the API.
After a write the browser is sent back to the note by its id: the text never travels in a URL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session

from service.api.records import etag
from service.audit_trail import RequestContext
from service.auth.scopes import needs
from service.errors import PreconditionFailed, VersionMismatch, VersionRequired, validation_problems
from service.patient_notes import NOTE_AUTHORS, NOTE_KIND, NoteEdit, NoteWrite, edit_draft, sign_note, write_note
from service.web.deps import PATIENT_PAGE, SessionDep, SignedIn, context_for_form, page_zone
from service.web.patient_page import patient_values
from service.web.rendering import WebRoute, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
# Generous, so an over-long note gets the page's words (NoteWrite's limit) instead of the bare address error.
FORM_TEXT_CAP = 20_000
WRITES = (*needs("DocumentReference.cu"), *PATIENT_PAGE)  # it shows the page again on a refused text
CHANGED_SINCE = (
    "This draft was changed after this page was opened (in another tab or on another device), so your change was "
    "not saved. Reload the page to see the draft as it is now, then change it again."
)
TextField = Annotated[str, Form(max_length=FORM_TEXT_CAP)]
Token = Annotated[str, Form(max_length=200)]
SignBox = Annotated[str, Form(max_length=8)]


def _refused(
    request: Request,
    session: Session,
    ctx: RequestContext,
    patient_id: str,
    error: ValidationError,
    form: dict[str, str],
) -> Response:
    problem = "; ".join(p.message for p in validation_problems(error))
    values = patient_values(session, ctx, patient_id, page_zone(request))
    values.update(title=values["name"], notice=None, ack_error=None, ack_form={},
                  note_error=f"The note was not saved: {problem}.", note_form=form)  # fmt: skip
    return render(request, "patient.html", values, status_code=422)


@router.post("/patients/{patient_id}/notes")
def write(
    request: Request,
    patient_id: str,
    session: SessionDep,
    web_session: SignedIn,
    text: TextField = "",
    sign: SignBox = "",
    amends: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Token = "",
) -> Response:
    ctx = context_for_form(request, web_session, session, csrf_token, "create", NOTE_KIND, NOTE_AUTHORS,
                           scopes=WRITES, patient_id=patient_id)  # fmt: skip
    try:
        note = NoteWrite(text=text, sign=bool(sign), amends=amends or None)
    except ValidationError as error:
        return _refused(request, session, ctx, patient_id, error, {"text": text, "amends": amends})
    written = write_note(session, ctx, patient_id, note)
    return RedirectResponse(f"/patients/{patient_id}#note-{written.id}", status_code=303)


@router.post("/patients/{patient_id}/notes/{note_id}")
def change_draft(
    request: Request,
    patient_id: str,
    note_id: str,
    session: SessionDep,
    web_session: SignedIn,
    text: TextField = "",
    sign: SignBox = "",
    version: Annotated[str, Form(max_length=12)] = "",
    csrf_token: Token = "",
) -> Response:
    ctx = context_for_form(request, web_session, session, csrf_token, "update", NOTE_KIND, NOTE_AUTHORS,
                           scopes=WRITES, patient_id=patient_id)  # fmt: skip
    try:
        edit = NoteEdit(text=text)
    except ValidationError as error:
        return _refused(request, session, ctx, patient_id, error, {"text": text, "draft": note_id})
    # The version the page showed: a draft changed since (the author's other tab) is not overwritten.
    try:
        edited = edit_draft(session, ctx, patient_id, note_id, edit, f'W/"{version}"' if version.isdigit() else None)
    except (VersionMismatch, VersionRequired):
        raise PreconditionFailed(CHANGED_SINCE) from None
    if sign:
        sign_note(session, ctx, patient_id, note_id, etag(edited.version))
    return RedirectResponse(f"/patients/{patient_id}#note-{note_id}", status_code=303)
