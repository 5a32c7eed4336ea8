"""Enrollment of a patient in a combined ketamine/esketamine + CBT programme."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator
from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field as SqlField

from service.records.base import ApiModel, PatientRecord, RecordId, RecordMeta, SourceIdentifier, Text

EnrollmentStatus = Literal["active", "on-hold", "completed", "discontinued"]

# SNOMED CT 370143000 "Major depressive disorder" (CLINICAL.md §1; SNOMED CT International browser).
MAJOR_DEPRESSIVE_DISORDER = ("http://snomed.info/sct", "370143000", "Major depressive disorder")


class Enrollment(PatientRecord, table=True):
    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"]),
        ForeignKeyConstraint(["tenant_id", "coordinator_id"], ["practitioners.tenant_id", "practitioners.id"]),
    )

    protocol_id: str = SqlField(max_length=64)
    protocol_version: str | None = SqlField(default=None, max_length=32)
    start_date: date
    end_date: date | None = None
    status: str = SqlField(max_length=16, index=True)
    status_reason: str | None = SqlField(default=None, max_length=4000)
    coordinator_id: str | None = SqlField(default=None, max_length=36)
    condition_system: str = SqlField(max_length=255)
    condition_code: str = SqlField(max_length=64)
    condition_display: str | None = SqlField(default=None, max_length=255)
    treatment_resistant: bool = False
    primary_instrument: str = SqlField(max_length=32)


# The status reason of an enrolment ended because the patient died (Patient.deceased[x], CLINICAL.md §5): the
# plan status then reads "deceased" and asks for no outreach (service/plan_status/engine.py).
DECEASED_REASON = "Patient deceased"


def ended_by_death(status: str, status_reason: str | None) -> bool:
    return status == "discontinued" and (status_reason or "").startswith(DECEASED_REASON)


class TargetCondition(ApiModel):
    system: Text = MAJOR_DEPRESSIVE_DISORDER[0]
    code: Text = MAJOR_DEPRESSIVE_DISORDER[1]
    display: Text | None = MAJOR_DEPRESSIVE_DISORDER[2]


class EnrollmentFields(ApiModel):
    """What a client may set; the service owns id, version, timestamps and tenant."""

    patient_id: RecordId
    protocol_id: Text = Field(description="Protocol the patient follows, e.g. iv-ketamine-cbt or esketamine-cbt")
    protocol_version: Text | None = Field(
        default=None, description="Version of the protocol; the newest when left out, then kept for the enrollment"
    )
    start_date: date
    end_date: date | None = None
    status: EnrollmentStatus = "active"
    status_reason: Text | None = Field(default=None, description="Why the enrollment is on hold or discontinued")
    coordinator_id: RecordId | None = None
    target_condition: TargetCondition = Field(default_factory=TargetCondition)
    treatment_resistant: bool = Field(
        default=False,
        description="No standard code exists for treatment-resistant depression; recorded as a flag",
    )
    primary_instrument: Literal["phq-9", "gad-7", "madrs", "qids-sr16"] = "phq-9"

    @model_validator(mode="after")
    def _consistent(self) -> EnrollmentFields:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        if self.status in ("on-hold", "discontinued") and self.status_reason is None:
            raise ValueError(f"status_reason is required when status is {self.status}")
        return self


class EnrollmentCreate(EnrollmentFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "0b9f3a52-5d7c-4f55-9a0e-2f7a1c0d4e11",
                    "protocol_id": "iv-ketamine-cbt",
                    "start_date": "2026-10-05",
                    "treatment_resistant": True,
                }
            ]
        }
    )


class EnrollmentPublic(RecordMeta, EnrollmentFields):
    pass


def condition_to_columns(values: dict[str, Any]) -> dict[str, Any]:
    condition = values.pop("target_condition")
    return {
        **values,
        "condition_system": condition["system"],
        "condition_code": condition["code"],
        "condition_display": condition["display"],
    }


def condition_from_columns(values: dict[str, Any]) -> dict[str, Any]:
    values = dict(values)
    values["target_condition"] = {
        "system": values.pop("condition_system"),
        "code": values.pop("condition_code"),
        "display": values.pop("condition_display"),
    }
    return values
