"""Notes the care team writes on a patient: a draft its author may edit, frozen once signed, corrected by amendment."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime
from service.records.base import new_id

NoteStatus = Literal["draft", "signed"]
# Long enough for a session summary, short enough that a note is a note and not a pasted document.
NOTE_MAX_LENGTH = 4000


class PatientNote(SQLModel, table=True):
    __tablename__ = "patient_notes"
    __table_args__ = (Index("ix_patient_notes_patient", "tenant_id", "patient_id", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    patient_id: str = Field(max_length=36)
    author: str = Field(max_length=255)
    author_role: str = Field(max_length=32)
    text: str = Field(max_length=NOTE_MAX_LENGTH)
    status: str = Field(default="draft", max_length=16)  # NoteStatus
    # The signed note this one corrects; the original is kept as it was, and reads as amended.
    amends_id: str | None = Field(default=None, foreign_key="patient_notes.id", max_length=36)
    created_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    signed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Each change of a draft (its text, its signing) is a new version: a change names the version it was made to.
    version: int = Field(default=1)
