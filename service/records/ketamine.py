"""Ketamine and esketamine administrations, with the monitoring recorded at each session."""

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

Drug = Literal["ketamine", "esketamine"]
Route = Literal["intravenous", "intramuscular", "intranasal", "sublingual", "oral"]
# entered-in-error: a correction (the record stays, marked wrong); it then counts for nothing.
AdministrationStatus = Literal["completed", "stopped", "not-done", "entered-in-error"]

# Physiological plausibility bounds: values outside them are typing errors, not clinical findings.
# A BP of 300/200 is already beyond any recorded survivable reading; 400/20 must be refused.
SYSTOLIC_RANGE = (40, 300)
DIASTOLIC_RANGE = (20, 200)
HEART_RATE_RANGE = (20, 250)
# Pulse oximetry reads 0-100 %; below 50 % the probe has lost the signal, not found a patient (typing error).
SPO2_RANGE = (50, 100)
# A weight-based dose and its mg/kg must agree within rounding of the recorded weight.
DOSE_AGREEMENT_TOLERANCE = 0.05


class KetamineAdministration(PatientRecord, table=True):
    __tablename__ = "ketamine_administrations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"]),
        ForeignKeyConstraint(["tenant_id", "enrollment_id"], ["enrollments.tenant_id", "enrollments.id"]),
        ForeignKeyConstraint(["tenant_id", "performer_id"], ["practitioners.tenant_id", "practitioners.id"]),
    )

    enrollment_id: str | None = SqlField(default=None, max_length=36)
    drug: str = SqlField(max_length=16)
    route: str = SqlField(max_length=16)
    dose_mg: float | None = None
    dose_mg_per_kg: float | None = None
    body_weight_kg: float | None = None
    started_at: datetime = SqlField(sa_type=UtcDateTime, index=True)
    ended_at: datetime | None = SqlField(default=None, sa_type=UtcDateTime)
    lot_number: str | None = SqlField(default=None, max_length=64)
    performer_id: str | None = SqlField(default=None, max_length=36)
    status: str = SqlField(max_length=16, index=True)
    status_reason: str | None = SqlField(default=None, max_length=4000)
    vital_signs: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    sedation_score: int | None = None
    dissociation_score: int | None = None
    observation_minutes: int | None = None
    adverse_events: list[dict[str, Any]] = SqlField(default_factory=list, sa_type=JSON)
    rems_form_submitted_at: datetime | None = SqlField(default=None, sa_type=UtcDateTime)
    # Who recorded the submission on the REMS form page or API (a token subject); None when the EHR sent the time.
    rems_form_submitted_by: str | None = SqlField(default=None, max_length=255)


class VitalSignReading(ApiModel):
    """Readings taken together at one time; blood pressure needs both values."""

    taken_at: Instant
    systolic_mmhg: Annotated[int, Field(ge=SYSTOLIC_RANGE[0], le=SYSTOLIC_RANGE[1])] | None = None
    diastolic_mmhg: Annotated[int, Field(ge=DIASTOLIC_RANGE[0], le=DIASTOLIC_RANGE[1])] | None = None
    heart_rate_bpm: Annotated[int, Field(ge=HEART_RATE_RANGE[0], le=HEART_RATE_RANGE[1])] | None = None
    spo2_percent: Annotated[int, Field(ge=SPO2_RANGE[0], le=SPO2_RANGE[1])] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> VitalSignReading:
        if (self.systolic_mmhg is None) != (self.diastolic_mmhg is None):
            raise ValueError("blood pressure needs both systolic_mmhg and diastolic_mmhg")
        if (
            self.systolic_mmhg is not None
            and self.diastolic_mmhg is not None
            and (self.systolic_mmhg <= self.diastolic_mmhg)
        ):
            raise ValueError("systolic_mmhg must be above diastolic_mmhg")
        if all(v is None for v in (self.systolic_mmhg, self.heart_rate_bpm, self.spo2_percent)):
            raise ValueError("a vital-sign reading needs at least one value")
        return self


class AdverseEvent(ApiModel):
    description: LongText
    serious: bool = False
    onset_at: Instant | None = None


class KetamineAdministrationFields(ApiModel):
    """What a client may set; the service owns id, version, timestamps and tenant."""

    patient_id: RecordId
    enrollment_id: RecordId | None = None
    drug: Drug
    route: Route
    dose_mg: Annotated[float, Field(gt=0, le=1000)] | None = None
    dose_mg_per_kg: Annotated[float, Field(gt=0, le=10)] | None = None
    body_weight_kg: Annotated[float, Field(gt=0, le=500)] | None = None
    started_at: Instant
    ended_at: Instant | None = None
    lot_number: Text | None = None
    performer_id: RecordId | None = None
    status: AdministrationStatus = "completed"
    status_reason: Text | None = Field(default=None, description="Required when status is not-done or stopped")
    vital_signs: list[VitalSignReading] = Field(default_factory=list, max_length=100)
    sedation_score: Annotated[int, Field(ge=0, le=5, description="MOAA/S, 0 = unresponsive")] | None = None
    dissociation_score: Annotated[int, Field(ge=0, le=92, description="CADSS total")] | None = None
    observation_minutes: Annotated[int, Field(ge=0, le=1440)] | None = None
    adverse_events: list[AdverseEvent] = Field(default_factory=list, max_length=50)
    rems_form_submitted_at: Instant | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KetamineAdministrationFields:
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        if self.status in ("not-done", "stopped") and self.status_reason is None:
            raise ValueError(f"status_reason is required when status is {self.status}")
        if self.status != "not-done" and self.dose_mg is None and self.dose_mg_per_kg is None:
            raise ValueError("a given dose needs dose_mg or dose_mg_per_kg")
        if self.dose_mg_per_kg is not None and self.body_weight_kg is not None:
            expected = self.dose_mg_per_kg * self.body_weight_kg
            if self.dose_mg is None:
                self.dose_mg = round(expected, 2)
            elif abs(self.dose_mg - expected) > DOSE_AGREEMENT_TOLERANCE * expected:
                raise ValueError(
                    f"dose_mg {self.dose_mg} does not match dose_mg_per_kg x body_weight_kg = {expected:.2f}"
                )
        elif self.dose_mg is not None and self.body_weight_kg is not None and self.dose_mg_per_kg is None:
            # Six decimals: rounding harder would make a small dose fail its own agreement check on re-validation.
            self.dose_mg_per_kg = round(self.dose_mg / self.body_weight_kg, 6)
        if self.drug == "esketamine" and self.route != "intranasal":
            # Esketamine (Spravato) is licensed as a nasal spray only (FDA label, section 2).
            raise ValueError("esketamine is given intranasally; route must be intranasal")
        return self


class KetamineAdministrationCreate(KetamineAdministrationFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": {"system": "urn:oid:2.16.840.1.113883.3.7418.5", "value": "MAR-88123"},
                    "patient_id": "0b9f3a52-5d7c-4f55-9a0e-2f7a1c0d4e11",
                    "drug": "ketamine",
                    "route": "intravenous",
                    "dose_mg": 35.0,
                    "dose_mg_per_kg": 0.5,
                    "body_weight_kg": 70.0,
                    "started_at": "2026-10-07T09:00:00+01:00",
                    "ended_at": "2026-10-07T09:40:00+01:00",
                    "lot_number": "K2419A",
                    "vital_signs": [
                        {
                            "taken_at": "2026-10-07T08:50:00+01:00",
                            "systolic_mmhg": 128,
                            "diastolic_mmhg": 82,
                            "heart_rate_bpm": 74,
                            "spo2_percent": 98,
                        }
                    ],
                    "sedation_score": 4,
                    "dissociation_score": 12,
                    "observation_minutes": 120,
                }
            ]
        }
    )


class KetamineAdministrationPublic(RecordMeta, KetamineAdministrationFields):
    rems_form_submitted_by: str | None = Field(
        default=None,
        description="Read-only: who recorded the REMS form's submission in Tandem (POST .../rems-form/submission); "
        "empty when the EHR sent rems_form_submitted_at",
    )
