"""Notes on a patient by the care team: written as a draft, signed to freeze them, corrected only by amendment.

A draft may be edited and signed by its author alone, each time naming the version read (If-Match: the author's
other tab, or a second device, must not overwrite or sign what they have not seen); a signed note never changes:
a correction is a new note that amends it (itself a draft until signed), and the original stays, read as amended.
Every read and write is audited (`patient-notes`); a note's text is never logged, nor put in an audit row or a URL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.auth.principal import Role
from service.break_glass.access import ensure_visible
from service.clock import now_utc
from service.errors import NotPermitted, RecordConflict, RecordNotFound
from service.record_store.store import check_version, expected_version
from service.records.patient import Patient
from service.records.patient_note import NOTE_MAX_LENGTH, NoteStatus, PatientNote

NOTE_KIND = "patient-notes"
# Who writes notes: the care team's people; an EHR system does not.
NOTE_AUTHORS: frozenset[Role] = frozenset({"clinician", "coordinator"})
NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NOTE_MAX_LENGTH)]


class NoteWrite(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "Called; reached the patient, next infusion confirmed.", "sign": True}]
        },
    )

    text: NoteText = Field(description=f"The note, 1 to {NOTE_MAX_LENGTH} characters")
    sign: bool = Field(False, description="Sign it at once (frozen); otherwise it is a draft its author may edit")
    amends: str | None = Field(None, max_length=64, description="The id of the signed note this one corrects")


class NoteEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: NoteText = Field(description=f"The draft's new text, 1 to {NOTE_MAX_LENGTH} characters")


class NotePublic(BaseModel):
    id: str
    patient_id: str
    author: str
    author_role: str
    text: str
    status: NoteStatus
    amends: str | None = Field(description="The signed note this one corrects")
    amended_by: list[str] = Field(description="Signed notes that correct this one: it reads as amended")
    created_at: datetime
    updated_at: datetime
    signed_at: datetime | None
    version: int = Field(description='The version a change names: If-Match: W/"<version>"')


class PatientNotes(BaseModel):
    patient_id: str
    notes: list[NotePublic] = Field(description="Newest first")


def list_notes(session: Session, ctx: RequestContext, patient_id: str) -> PatientNotes:
    ctx.intent = AuditIntent("list", NOTE_KIND, patient_id=patient_id)
    _require_patient(session, ctx, patient_id)
    rows = session.exec(
        select(PatientNote)
        .where(col(PatientNote.tenant_id) == ctx.tenant_id, col(PatientNote.patient_id) == patient_id)
        .order_by(col(PatientNote.created_at).desc(), col(PatientNote.id))
    ).all()
    amended_by: dict[str, list[str]] = {}
    for row in rows:
        if row.amends_id is not None and row.status == "signed":
            amended_by.setdefault(row.amends_id, []).append(row.id)
    record_success(session, ctx, status_code=200)
    return PatientNotes(patient_id=patient_id, notes=[_public(row, amended_by.get(row.id, [])) for row in rows])


def read_note(session: Session, ctx: RequestContext, patient_id: str, note_id: str) -> NotePublic:
    ctx.intent = AuditIntent("read", NOTE_KIND, record_id=note_id, patient_id=patient_id)
    note = _note(session, ctx, patient_id, note_id)
    record_success(session, ctx, status_code=200)
    return _public(note, _amendments(session, note))


def write_note(session: Session, ctx: RequestContext, patient_id: str, request: NoteWrite) -> NotePublic:
    ctx.intent = AuditIntent("create", NOTE_KIND, patient_id=patient_id)
    _require_patient(session, ctx, patient_id)
    if request.amends is not None:
        original = _note(session, ctx, patient_id, request.amends)
        if original.status != "signed":
            raise RecordConflict(
                "only a signed note is amended; a draft is changed by its author, who edits it before signing"
            )
    now = now_utc()
    note = PatientNote(
        tenant_id=ctx.tenant_id,
        patient_id=patient_id,
        author=ctx.principal.subject,
        author_role=ctx.principal.role,
        text=request.text,
        status="signed" if request.sign else "draft",
        amends_id=request.amends,
        created_at=now,
        updated_at=now,
        signed_at=now if request.sign else None,
    )
    session.add(note)
    session.flush()
    ctx.intent.record_id = note.id
    record_success(session, ctx, status_code=201)
    return _public(note, [])


def edit_draft(
    session: Session, ctx: RequestContext, patient_id: str, note_id: str, request: NoteEdit, if_match: str | None
) -> NotePublic:
    ctx.intent = AuditIntent("update", NOTE_KIND, record_id=note_id, patient_id=patient_id)
    note = _own_draft(session, ctx, patient_id, note_id, if_match)
    note.text, note.updated_at = request.text, now_utc()
    note.version += 1
    session.add(note)
    session.flush()
    record_success(session, ctx, status_code=200)
    return _public(note, [])


def sign_note(session: Session, ctx: RequestContext, patient_id: str, note_id: str, if_match: str | None) -> NotePublic:
    ctx.intent = AuditIntent("update", NOTE_KIND, record_id=note_id, patient_id=patient_id)
    note = _own_draft(session, ctx, patient_id, note_id, if_match)
    note.status, note.signed_at = "signed", now_utc()
    note.updated_at = note.signed_at
    note.version += 1
    session.add(note)
    session.flush()
    record_success(session, ctx, status_code=200)
    return _public(note, [])


def _own_draft(
    session: Session, ctx: RequestContext, patient_id: str, note_id: str, if_match: str | None
) -> PatientNote:
    note = _note(session, ctx, patient_id, note_id)
    if note.status == "signed":
        raise RecordConflict("this note is signed and cannot change; write an amendment to correct it")
    if note.author != ctx.principal.subject:
        raise NotPermitted(f"only its author ({note.author}) may change or sign a draft note")
    check_version(note.version, expected_version(if_match), if_match)
    return note


def _note(session: Session, ctx: RequestContext, patient_id: str, note_id: str) -> PatientNote:
    _require_patient(session, ctx, patient_id)
    note = session.get(PatientNote, note_id)
    if note is None or note.tenant_id != ctx.tenant_id or note.patient_id != patient_id:
        raise RecordNotFound("note", note_id)
    return note


def _amendments(session: Session, note: PatientNote) -> list[str]:
    found = session.exec(
        select(PatientNote.id).where(
            col(PatientNote.tenant_id) == note.tenant_id,
            col(PatientNote.amends_id) == note.id,
            col(PatientNote.status) == "signed",
        )
    )
    return list(found.all())


def _require_patient(session: Session, ctx: RequestContext, patient_id: str) -> None:
    found = session.exec(
        select(Patient.id).where(col(Patient.tenant_id) == ctx.tenant_id, col(Patient.id) == patient_id)
    )
    if found.first() is None:
        raise RecordNotFound("patient", patient_id)
    ensure_visible(session, ctx, patient_id)


def _public(note: PatientNote, amended_by: list[str]) -> NotePublic:
    return NotePublic(
        id=note.id,
        patient_id=note.patient_id,
        author=note.author,
        author_role=note.author_role,
        text=note.text,
        status="signed" if note.status == "signed" else "draft",
        amends=note.amends_id,
        amended_by=amended_by,
        created_at=note.created_at,
        updated_at=note.updated_at,
        signed_at=note.signed_at,
        version=note.version,
    )
