"""Questionnaire responses as answered, item by item; scoring reads these answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator
from sqlalchemy import JSON, ForeignKeyConstraint, UniqueConstraint, true
from sqlmodel import Field as SqlField
from sqlmodel import SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime
from service.instruments.answers import ItemAnswer
from service.records.base import (
    ApiModel,
    Instant,
    LongText,
    PatientRecord,
    RecordId,
    RecordMeta,
    SourceIdentifier,
    Text,
    new_id,
)

AuthorKind = Literal["patient", "clinician"]
ResponseStatus = Literal["completed", "in-progress", "amended", "entered-in-error"]


class QuestionnaireResponse(PatientRecord, table=True):
    __tablename__ = "questionnaire_responses"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"]),
        ForeignKeyConstraint(["tenant_id", "enrollment_id"], ["enrollments.tenant_id", "enrollments.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "ketamine_administration_id"],
            ["ketamine_administrations.tenant_id", "ketamine_administrations.id"],
        ),
        ForeignKeyConstraint(["tenant_id", "cbt_session_id"], ["cbt_sessions.tenant_id", "cbt_sessions.id"]),
    )

    enrollment_id: str | None = SqlField(default=None, max_length=36)
    instrument: str = SqlField(max_length=32, index=True)
    questionnaire: str | None = SqlField(default=None, max_length=1024)
    authored_at: datetime = SqlField(sa_type=UtcDateTime, index=True)
    author_kind: str = SqlField(max_length=16)
    status: str = SqlField(max_length=16, index=True)
    answers: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    ketamine_administration_id: str | None = SqlField(default=None, max_length=36)
    cbt_session_id: str | None = SqlField(default=None, max_length=36)
    sent_total: float | None = None
    # As the sender wrote them (QuestionnaireResponse.author, .source, and the item its total came in).
    author: dict[str, Any] | None = SqlField(default=None, sa_type=JSON)
    answered_by: dict[str, Any] | None = SqlField(default=None, sa_type=JSON)
    sent_total_item: dict[str, Any] | None = SqlField(default=None, sa_type=JSON)
    # The score, computed once on write so plan status and the coordinator pages never rescore.
    total: float | None = None
    severity: str | None = SqlField(default=None, max_length=32)
    complete: bool = False
    missing_items: list[str] = SqlField(default_factory=list, sa_type=JSON)
    item_scores: dict[str, int] = SqlField(default_factory=dict, sa_type=JSON)
    safety_findings: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    total_mismatch: bool = False
    instrument_version: str | None = SqlField(default=None, max_length=32)
    # False: the total was sent without its items (a flowsheet row, a total Observation); see Score.items_reported.
    items_reported: bool = SqlField(default=True, sa_column_kwargs={"server_default": true()})


class RegisteredQuestionnaire(SQLModel, table=True):
    """A hospital forms tool's Questionnaire, mapped onto one of our instruments so its responses can be scored."""

    __tablename__ = "registered_questionnaires"
    __table_args__ = (UniqueConstraint("tenant_id", "canonical"),)

    id: str = SqlField(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = SqlField(foreign_key="tenants.id", max_length=64, index=True)
    created_at: datetime = SqlField(default_factory=now_utc, sa_type=UtcDateTime)
    canonical: str = SqlField(max_length=1024)
    instrument: str = SqlField(max_length=32)
    mapping: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)


class ResponseParty(ApiModel):
    """A reference as the sender wrote it (QuestionnaireResponse.author or .source): kept, never resolved."""

    reference: Text | None = Field(default=None, description="e.g. Practitioner/123 at the sender")
    type: Text | None = Field(default=None, description="e.g. Practitioner")
    display: Text | None = None

    @model_validator(mode="after")
    def _says_something(self) -> ResponseParty:
        if self.reference is None and self.type is None and self.display is None:
            raise ValueError("a reference needs a reference, type or display")
        return self


class TotalItem(ApiModel):
    """The item the sender put its total in (US Core: linkId /44261-6): served back there with the sent total."""

    link_id: Text
    text: LongText | None = None
    position: int = Field(ge=0, le=200, description="Its place among the answered items")
    value_type: Literal["valueDecimal", "valueInteger", "valueQuantity", "valueString"] = "valueDecimal"


class QuestionnaireResponseFields(ApiModel):
    """What a client may set; the service owns id, version, timestamps and tenant."""

    patient_id: RecordId
    enrollment_id: RecordId | None = None
    instrument: Text = Field(description="Instrument key, e.g. phq-9, gad-7, c-ssrs-screener")
    questionnaire: Text | None = Field(default=None, description="Canonical URL of the Questionnaire answered")
    authored_at: Instant
    author_kind: AuthorKind = "patient"
    status: ResponseStatus = "completed"
    answers: list[ItemAnswer] = Field(max_length=200)
    ketamine_administration_id: RecordId | None = Field(
        default=None, description="The ketamine session this response was taken at, if any"
    )
    cbt_session_id: RecordId | None = Field(default=None, description="The CBT session this response belongs to")
    sent_total: float | None = Field(
        default=None, description="The total the sender computed; kept beside ours and flagged when they differ"
    )
    sent_total_item: TotalItem | None = Field(default=None, description="Where the sender put that total")
    author: ResponseParty | None = Field(
        default=None, description="Who recorded it, as the sender wrote it (FHIR QuestionnaireResponse.author)"
    )
    answered_by: ResponseParty | None = Field(
        default=None, description="Who answered, as the sender wrote it (FHIR QuestionnaireResponse.source)"
    )

    @model_validator(mode="after")
    def _one_answer_per_item(self) -> QuestionnaireResponseFields:
        link_ids = [a.link_id for a in self.answers]
        repeated = sorted({i for i in link_ids if link_ids.count(i) > 1})
        if repeated:
            raise ValueError(f"item {repeated[0]} is answered more than once")
        return self


class QuestionnaireResponseCreate(QuestionnaireResponseFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "0b9f3a52-5d7c-4f55-9a0e-2f7a1c0d4e11",
                    "instrument": "phq-9",
                    "authored_at": "2026-10-06T08:30:00+01:00",
                    "answers": [
                        {
                            "link_id": "44250-9",
                            "value_coding": {"system": "http://loinc.org", "code": "LA6569-3"},
                        },
                        {"link_id": "44255-8", "value_integer": 2},
                    ],
                }
            ]
        }
    )


class SafetyFinding(ApiModel):
    link_id: str | None = Field(description="The item that raised it; null when the finding is on the total")
    code: str | None = None
    reason: str
    value: float


class StoredScore(ApiModel):
    """Computed by the service from the answers; clients cannot set it."""

    total: float | None = Field(
        description="Null when the response is incomplete and the instrument allows no proration"
    )
    severity: str | None
    complete: bool
    missing_items: list[str]
    item_scores: dict[str, int]
    safety_findings: list[SafetyFinding]
    total_mismatch: bool = Field(description="The sent total differs from ours; both are kept")
    instrument_version: str | None
    items_reported: bool = Field(
        default=True,
        description="False: only the total was sent (items not reported); it counts as the score, and what the "
        "items would have said (PHQ-9 item 9) is unknown",
    )


class QuestionnaireResponsePublic(RecordMeta, QuestionnaireResponseFields):
    score: StoredScore
