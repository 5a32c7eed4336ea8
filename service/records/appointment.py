"""Appointments: a CBT or ketamine/esketamine session booked in the EHR (FHIR Appointment), kept as a planned
session. The next booked one is the plan's next due date; a no-show counts as a missed session (CLINICAL.md §1, §4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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

# What the appointment is for: a CBT session, or a session of the enrolment's drug (ketamine or esketamine).
AppointmentService = Literal["cbt", "ketamine"]
# R4 Appointment.status (valueset-appointmentstatus), kept as sent. Booked, pending, arrived and checked-in hold a
# slot (the next due date); proposed and waitlist do not yet; entered-in-error counts for nothing.
AppointmentStatus = Literal[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
]
HOLDS_A_SLOT: frozenset[str] = frozenset({"pending", "booked", "arrived", "checked-in"})


class Appointment(PatientRecord, table=True):
    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"]),
        ForeignKeyConstraint(["tenant_id", "enrollment_id"], ["enrollments.tenant_id", "enrollments.id"]),
        ForeignKeyConstraint(["tenant_id", "practitioner_id"], ["practitioners.tenant_id", "practitioners.id"]),
    )

    enrollment_id: str | None = SqlField(default=None, max_length=36)
    practitioner_id: str | None = SqlField(default=None, max_length=36)
    service: str = SqlField(max_length=16)
    status: str = SqlField(max_length=16, index=True)
    start: datetime = SqlField(sa_type=UtcDateTime, index=True)
    end: datetime = SqlField(sa_type=UtcDateTime)
    # The codings the sender typed the appointment with (system, code, display), served back as sent.
    service_codes: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    description: str | None = SqlField(default=None, max_length=4000)
    cancellation_reason: str | None = SqlField(default=None, max_length=4000)


class ServiceCoding(ApiModel):
    system: Text | None = None
    code: Text
    display: Text | None = None


class AppointmentFields(ApiModel):
    """What a client may set; the service owns id, version, timestamps and tenant."""

    patient_id: RecordId
    enrollment_id: RecordId | None = None
    practitioner_id: RecordId | None = None
    service: AppointmentService
    status: AppointmentStatus = "booked"
    start: Instant
    end: Instant
    service_codes: list[ServiceCoding] = Field(default_factory=list, max_length=20)
    description: LongText | None = None
    cancellation_reason: LongText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AppointmentFields:
        if self.end <= self.start:
            raise ValueError("end is not after start")
        return self


class AppointmentCreate(AppointmentFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8", "value": "APPT-88120"},
                    "patient_id": "0b9f3a52-5d7c-4f55-9a0e-2f7a1c0d4e11",
                    "service": "cbt",
                    "status": "booked",
                    "start": "2026-12-10T14:00:00+00:00",
                    "end": "2026-12-10T14:50:00+00:00",
                }
            ]
        }
    )


class AppointmentPublic(RecordMeta, AppointmentFields):
    pass
