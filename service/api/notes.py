"""Notes on a patient (service/patient_notes.py): write, edit a draft, sign, amend, read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response

from service import patient_notes
from service.api.deps import SessionDep, context_for
from service.api.problems import ERROR_RESPONSES, UPDATE_ERROR_RESPONSES, WRITE_ERROR_RESPONSES
from service.api.records import API_PREFIX, etag
from service.audit_trail import RequestContext
from service.auth.scopes import needs
from service.patient_notes import NOTE_AUTHORS, NOTE_KIND, NoteEdit, NotePublic, NoteWrite, PatientNotes

router = APIRouter(prefix=API_PREFIX, tags=["notes"])
# In FHIR terms a clinical note is a DocumentReference about the patient.
ReadsNotes = Annotated[
    RequestContext,
    Depends(context_for("read", NOTE_KIND, NOTE_AUTHORS, scopes=needs("Patient.r", "DocumentReference.rs"))),
]
WritesNotes = Annotated[
    RequestContext,
    Depends(context_for("create", NOTE_KIND, NOTE_AUTHORS, scopes=needs("Patient.r", "DocumentReference.cu"))),
]
NOTES = "/patients/{patient_id}/notes"
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=64)]


def _answer(response: Response, note: NotePublic) -> NotePublic:
    response.headers["Cache-Control"] = "no-store"
    response.headers["ETag"] = etag(note.version)
    return note


@router.get(NOTES, operation_id="listNotes", summary="The patient's notes, newest first, drafts and signed",
            response_model=PatientNotes, responses=ERROR_RESPONSES)  # fmt: skip
def list_notes(patient_id: str, response: Response, session: SessionDep, ctx: ReadsNotes) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return patient_notes.list_notes(session, ctx, patient_id)


@router.post(
    NOTES,
    operation_id="writeNote",
    summary="Write a note (a draft, or signed at once with sign: true); amends names the signed note it corrects",
    status_code=201,
    response_model=NotePublic,
    responses=WRITE_ERROR_RESPONSES,
)
def write_note(patient_id: str, request: NoteWrite, response: Response, session: SessionDep, ctx: WritesNotes) -> Any:
    return _answer(response, patient_notes.write_note(session, ctx, patient_id, request))


@router.get(f"{NOTES}/{{note_id}}", operation_id="readNote", summary="One note, with the notes that amend it",
            response_model=NotePublic, responses=ERROR_RESPONSES)  # fmt: skip
def read_note(patient_id: str, note_id: str, response: Response, session: SessionDep, ctx: ReadsNotes) -> Any:
    return _answer(response, patient_notes.read_note(session, ctx, patient_id, note_id))


@router.patch(
    f"{NOTES}/{{note_id}}",
    operation_id="editDraftNote",
    summary="Change a draft's text (its author only); a signed note answers 409",
    description='`If-Match` must carry the ETag last read (W/"n"); a stale one gets 412, none 428.',
    response_model=NotePublic,
    responses=UPDATE_ERROR_RESPONSES,
)
def edit_draft(
    patient_id: str,
    note_id: str,
    request: NoteEdit,
    response: Response,
    session: SessionDep,
    ctx: WritesNotes,
    if_match: IfMatch = None,
) -> Any:
    return _answer(response, patient_notes.edit_draft(session, ctx, patient_id, note_id, request, if_match))


@router.post(
    f"{NOTES}/{{note_id}}/sign",
    operation_id="signNote",
    summary="Sign a draft (its author only): from then on it never changes",
    description='`If-Match` must carry the ETag of the draft signed (W/"n"): a changed draft is read before signing.',
    response_model=NotePublic,
    responses=UPDATE_ERROR_RESPONSES,
)
def sign_note(
    patient_id: str, note_id: str, response: Response, session: SessionDep, ctx: WritesNotes, if_match: IfMatch = None
) -> Any:
    return _answer(response, patient_notes.sign_note(session, ctx, patient_id, note_id, if_match))
