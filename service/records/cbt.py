"""CBT sessions: planned, attended, cancelled or missed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator
from sqlalchemy import JSON, ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field as SqlField

from service.db.types import UtcDateTime
from service.records.base import (
    ApiModel,
    Instant,
    LongText,
    PatientRecord,
    RecordId,
    RecordMeta,
    SourceIdentifier,
    Text,
)

CbtSessionStatus = Literal["planned", "attended", "cancelled", "no-show", "entered-in-error"]
CbtSetting = Literal["in-person", "video"]
# What kind of therapy the visit was: "cbt" when a CBT code (or a site code mapped to one) says so;
# "psychotherapy-unspecified" for psychotherapy typed only by CPT 90832/90834/90837/90853 or SNOMED
# 75516001/18512000 (CLINICAL.md §1: "psychotherapy, not necessarily CBT: keep 'modality unknown'").
CbtModality = Literal["cbt", "psychotherapy-unspecified"]


class VisitCoding(ApiModel):
    system: Text | None = None
    code: Text
    display: Text | None = None


class VisitType(ApiModel):
    """One Encounter.type as the sender coded it, served back as sent."""

    coding: list[VisitCoding] = Field(default_factory=list, max_length=10)
    text: Text | None = None


class CbtSession(PatientRecord, table=True):
    __tablename__ = "cbt_sessions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"]),
        ForeignKeyConstraint(["tenant_id", "enrollment_id"], ["enrollments.tenant_id", "enrollments.id"]),
        ForeignKeyConstraint(["tenant_id", "therapist_id"], ["practitioners.tenant_id", "practitioners.id"]),
    )

    enrollment_id: str | None = SqlField(default=None, max_length=36)
    session_number: int
    therapist_id: str | None = SqlField(default=None, max_length=36)
    planned_start: datetime = SqlField(sa_type=UtcDateTime, index=True)
    planned_minutes: int
    actual_start: datetime | None = SqlField(default=None, sa_type=UtcDateTime)
    actual_end: datetime | None = SqlField(default=None, sa_type=UtcDateTime)
    status: str = SqlField(max_length=16, index=True)
    status_reason: str | None = SqlField(default=None, max_length=4000)
    setting: str = SqlField(max_length=16)
    modules_covered: list[str] = SqlField(default_factory=list, sa_type=JSON)
    homework_set: str | None = SqlField(default=None, max_length=4000)
    homework_completed: bool | None = None
    modality: str = SqlField(default="cbt", max_length=32)
    visit_types: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)


class CbtSessionFields(ApiModel):
    """What a client may set; the service owns id, version, timestamps and tenant."""

    patient_id: RecordId
    enrollment_id: RecordId | None = None
    session_number: Annotated[int, Field(ge=1, le=200)]
    therapist_id: RecordId | None = None
    planned_start: Instant
    planned_minutes: Annotated[int, Field(ge=5, le=240)] = 50
    actual_start: Instant | None = None
    actual_end: Instant | None = None
    status: CbtSessionStatus = "planned"
    status_reason: Text | None = None
    setting: CbtSetting = "in-person"
    modules_covered: list[Text] = Field(default_factory=list, max_length=30)
    homework_set: LongText | None = None
    homework_completed: bool | None = Field(
        default=None, description="Whether the previous session's homework was done"
    )
    modality: CbtModality = Field(
        default="cbt",
        description="cbt, or psychotherapy-unspecified: a psychotherapy visit (e.g. CPT 90837) with no code saying "
        "CBT. It counts toward the CBT course with a note asking to confirm the modality",
    )
    visit_types: list[VisitType] = Field(
        default_factory=list,
        max_length=10,
        description="Encounter.type as the EHR sent it (CPT, SNOMED CT, the site's own visit type); empty for a "
        "session recorded here, whose FHIR type is derived from its length and modality",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CbtSessionFields:
        if self.actual_end is not None and self.actual_start is None:
            raise ValueError("actual_end needs actual_start")
        if self.actual_start is not None and self.actual_end is not None and self.actual_end < self.actual_start:
            raise ValueError("actual_end is before actual_start")
        if self.status == "attended" and self.actual_start is None:
            raise ValueError("an attended session needs actual_start")
        if self.status in ("cancelled", "no-show", "planned") and self.actual_start is not None:
            raise ValueError(f"a {self.status} session has no actual_start")
        return self


class CbtSessionCreate(CbtSessionFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": {"system": "urn:oid:2.16.840.1.113883.3.7418.9", "value": "APPT-55120"},
                    "patient_id": "0b9f3a52-5d7c-4f55-9a0e-2f7a1c0d4e11",
                    "session_number": 3,
                    "planned_start": "2026-10-20T14:00:00+01:00",
                    "actual_start": "2026-10-20T14:02:00+01:00",
                    "actual_end": "2026-10-20T14:52:00+01:00",
                    "status": "attended",
                    "setting": "video",
                    "modules_covered": ["behavioural activation", "thought records"],
                    "homework_set": "Activity schedule, three pleasant activities",
                    "homework_completed": True,
                }
            ]
        }
    )


class CbtSessionPublic(RecordMeta, CbtSessionFields):
    pass
