"""What the engine reads: facts the database layer builds from stored rows, stripped of everything else.

Datetimes must carry a timezone: the engine compares instants across records from different systems.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EnrollmentStatus = Literal["active", "on-hold", "completed", "discontinued"]
SessionStatus = Literal["completed", "stopped", "not-done"]
CbtStatus = Literal["planned", "attended", "cancelled", "no-show"]
# entered-in-error is the FHIR status for a response that should never have existed: ignored everywhere.
MeasurementStatus = Literal["completed", "amended", "in-progress", "entered-in-error"]
Drug = Literal["ketamine", "esketamine"]
RecordId = Annotated[str, Field(min_length=1, max_length=64)]


class Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnrollmentFacts(Facts):
    id: RecordId
    patient_id: RecordId
    protocol_id: str
    # The version the patient started on; it changes only when a clinician explicitly moves the patient.
    protocol_version: str
    start_date: date
    status: EnrollmentStatus = "active"
    status_reason: str | None = None
    # Ended because the patient died (Patient.deceased[x]): no outreach is due, whatever was open (CLINICAL.md §5).
    ended_by_death: bool = False
    primary_instrument: str = "phq-9"
    coordinator_id: str | None = None


class VitalSigns(Facts):
    taken_at: AwareDatetime
    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None
    spo2: int | None = None


class AdverseEventFacts(Facts):
    description: str
    serious: bool = False


class KetamineSessionFacts(Facts):
    id: RecordId
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    status: SessionStatus = "completed"
    drug: Drug = "ketamine"
    vital_signs: tuple[VitalSigns, ...] = ()
    sedation_score: Annotated[int, Field(ge=0, le=5)] | None = None  # MOAA/S, 0 = unresponsive
    dissociation_score: Annotated[int, Field(ge=0, le=92)] | None = None  # CADSS total
    observation_minutes: Annotated[int, Field(ge=0)] | None = None
    adverse_events: tuple[AdverseEventFacts, ...] = ()
    rems_form_submitted_at: AwareDatetime | None = None


class CbtSessionFacts(Facts):
    id: RecordId
    session_number: int
    planned_start: AwareDatetime
    status: CbtStatus = "planned"
    actual_start: AwareDatetime | None = None
    # "psychotherapy-unspecified": a psychotherapy visit with no code saying CBT (CPT 90837 alone). It counts
    # toward the CBT course, with a note asking to confirm (adherence.unstated_modality).
    modality: Literal["cbt", "psychotherapy-unspecified"] = "cbt"


# R4 Appointment.status (service/records/appointment.py).
AppointmentStatus = Literal[
    "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "checked-in", "waitlist"
]


class AppointmentFacts(Facts):
    """A CBT or drug session booked in the EHR (FHIR Appointment); entered-in-error ones are not facts."""

    id: RecordId
    service: Literal["cbt", "ketamine"]
    status: AppointmentStatus
    start: AwareDatetime
    # When Tandem learnt of it: a recompute of an earlier as_of does not see a booking made later.
    recorded_at: AwareDatetime


class SafetyFindingFacts(Facts):
    link_id: str | None
    code: str | None = None
    reason: str
    value: float | None = None


class MeasurementFacts(Facts):
    id: RecordId
    instrument: str
    authored_at: AwareDatetime
    total: float | None = None
    complete: bool = True
    # False: a total sent without its items; it counts as the score, but its items (PHQ-9 item 9) are unknown.
    items_reported: bool = True
    safety_findings: tuple[SafetyFindingFacts, ...] = ()
    status: MeasurementStatus = "completed"


class Acknowledgement(Facts):
    """A clinician's acknowledgement of one flag occurrence: the flag code and its occurrence record."""

    flag_code: str
    record_id: RecordId
    acknowledged_at: AwareDatetime
    by: str  # a practitioner id, never a name
    note: str | None = None
