"""A patient's vital signs sent on their own (an EHR's flowsheet rows): blood pressure, heart rate, SpO2.

Vital signs recorded *inside* a ketamine session's record stay in its `vital_signs`. One sent as its own
Observation is a row here; when it was taken in a session's window (service/intake/vital_signs.py) it names that
session (`ketamine_administration_id`) and counts in the session's safety rules like the session's own readings;
otherwise it is the patient's pre-treatment screening.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator
from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field as SqlField

from service.db.types import UtcDateTime
from service.records.base import ApiModel, Instant, PatientRecord, RecordId, RecordMeta, SourceIdentifier
from service.records.ketamine import DIASTOLIC_RANGE, HEART_RATE_RANGE, SPO2_RANGE, SYSTOLIC_RANGE

# The LOINC code the sender used (CLINICAL.md section 1): 85354-9 BP panel, 8480-6 systolic, 8462-4 diastolic,
# 8867-4 heart rate, 59408-5 SpO2 by pulse oximetry, 2708-6 SpO2 (arterial).
VitalSignCode = Literal["85354-9", "8480-6", "8462-4", "8867-4", "59408-5", "2708-6"]
Measure = Literal["blood-pressure", "systolic", "diastolic", "heart-rate", "spo2"]
VitalSignStatus = Literal["final", "amended", "entered-in-error"]
# Which value each measure carries.
MEASURE_FIELDS: dict[str, tuple[str, ...]] = {
    "blood-pressure": ("systolic_mmhg", "diastolic_mmhg"),
    "systolic": ("systolic_mmhg",),
    "diastolic": ("diastolic_mmhg",),
    "heart-rate": ("heart_rate_bpm",),
    "spo2": ("spo2_percent",),
}


class VitalSign(PatientRecord, table=True):
    __tablename__ = "vital_signs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "ketamine_administration_id"],
            ["ketamine_administrations.tenant_id", "ketamine_administrations.id"],
        ),
    )

    # The session it was taken at (its window held taken_at, or the sender's partOf named it); None: screening.
    ketamine_administration_id: str | None = SqlField(default=None, max_length=36, index=True)
    taken_at: datetime = SqlField(sa_type=UtcDateTime, index=True)
    status: str = SqlField(max_length=16, index=True)
    loinc: str = SqlField(max_length=16)
    measure: str = SqlField(max_length=16)
    systolic_mmhg: int | None = None
    diastolic_mmhg: int | None = None
    heart_rate_bpm: int | None = None
    spo2_percent: int | None = None


class VitalSignFields(ApiModel):
    """One measurement as sent; the value fields are the measure's (a BP panel carries both pressures)."""

    patient_id: RecordId
    ketamine_administration_id: RecordId | None = Field(
        default=None, description="The ketamine/esketamine session it was taken at; found by time when not sent"
    )
    taken_at: Instant
    status: VitalSignStatus = "final"
    loinc: VitalSignCode
    measure: Measure
    systolic_mmhg: Annotated[int, Field(ge=SYSTOLIC_RANGE[0], le=SYSTOLIC_RANGE[1])] | None = None
    diastolic_mmhg: Annotated[int, Field(ge=DIASTOLIC_RANGE[0], le=DIASTOLIC_RANGE[1])] | None = None
    heart_rate_bpm: Annotated[int, Field(ge=HEART_RATE_RANGE[0], le=HEART_RATE_RANGE[1])] | None = None
    spo2_percent: Annotated[int, Field(ge=SPO2_RANGE[0], le=SPO2_RANGE[1])] | None = None

    @model_validator(mode="after")
    def _the_measures_values(self) -> VitalSignFields:
        wanted = MEASURE_FIELDS[self.measure]
        for name in ("systolic_mmhg", "diastolic_mmhg", "heart_rate_bpm", "spo2_percent"):
            present = getattr(self, name) is not None
            if present != (name in wanted):
                raise ValueError(f"{self.measure} carries {' and '.join(wanted)} only")
        systolic, diastolic = self.systolic_mmhg, self.diastolic_mmhg
        if systolic is not None and diastolic is not None and systolic <= diastolic:
            raise ValueError("systolic_mmhg must be above diastolic_mmhg")
        return self


class VitalSignCreate(VitalSignFields):
    source: SourceIdentifier | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679", "value": "VS-40211"},
                    "patient_id": "0b9f3a52-5d7c-4f55-9a0e-2f7a1c0d4e11",
                    "taken_at": "2026-12-10T14:40:00+00:00",
                    "loinc": "85354-9",
                    "measure": "blood-pressure",
                    "systolic_mmhg": 148,
                    "diastolic_mmhg": 92,
                }
            ]
        }
    )


class VitalSignPublic(RecordMeta, VitalSignFields):
    pass
