"""The vital-sign Observation intake: blood pressure, heart rate, SpO2 sent on their own (POST, Bundles, import, pull).

fhir_mappings reads the structure and the UCUM units; here the values are held to the same plausibility bounds as
a session's own readings (service/records/ketamine.py), a time in the future is refused, and the reading is
matched to the patient's ketamine/esketamine session whose window holds it (service/plan_status/session_vitals.py):
then it feeds that session's blood-pressure safety rules; otherwise it is the patient's screening vitals.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from sqlmodel import col, select

import fhir_mappings as fm
from service.clock import now_utc
from service.plan_status.session_vitals import SessionTimes, session_at
from service.records.ketamine import (
    DIASTOLIC_RANGE,
    HEART_RATE_RANGE,
    SPO2_RANGE,
    SYSTOLIC_RANGE,
    KetamineAdministration,
)
from service.records.vital_sign import VitalSignCreate

from .context import Intake, mapped, refused, validated

_WHERE: Final = "Observation"
# Clocks of two systems disagree by a little; a reading more than this ahead of ours is a wrong date.
CLOCK_SKEW: Final = timedelta(minutes=5)
_BOUNDS: Final = {
    "systolic_mmhg": (SYSTOLIC_RANGE, "mm[Hg]", "systolic blood pressure"),
    "diastolic_mmhg": (DIASTOLIC_RANGE, "mm[Hg]", "diastolic blood pressure"),
    "heart_rate_bpm": (HEART_RATE_RANGE, "/min", "heart rate"),
    "spo2_percent": (SPO2_RANGE, "%", "SpO2"),
}


def take_vital_sign(intake: Intake, resource: dict[str, Any]) -> VitalSignCreate:
    sent = mapped(
        lambda: fm.read_vital_sign(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            resolve_reference=intake.resolve,
            source_system=intake.source_system,
        )
    )
    body: dict[str, Any] = dict(sent.header)
    for name, value in sent.values.items():
        body[name] = _plausible(name, value)
    systolic, diastolic = body.get("systolic_mmhg"), body.get("diastolic_mmhg")
    if systolic is not None and diastolic is not None and systolic <= diastolic:
        raise refused(fm.MappingError(f"{_WHERE}.component", "systolic must be above diastolic", code="invariant"))
    taken_at = datetime.fromisoformat(sent.header["taken_at"])
    if taken_at > now_utc() + CLOCK_SKEW:
        raise refused(
            fm.MappingError(
                sent.taken_at_location,
                f"{sent.header['taken_at']} is in the future: send the time the reading was taken",
                code="value",
            )
        )
    patient_id = str(sent.header["patient_id"])
    body["ketamine_administration_id"] = sent.part_of or session_taken_at(intake, patient_id, taken_at)
    return validated(VitalSignCreate, body, _WHERE)


def session_taken_at(intake: Intake, patient_id: str, taken_at: datetime) -> str | None:
    """The patient's session (not recorded in error) whose monitoring window holds the instant, or None."""
    around = intake.session.exec(
        select(KetamineAdministration).where(
            col(KetamineAdministration.tenant_id) == intake.tenant_id,
            col(KetamineAdministration.patient_id) == patient_id,
            col(KetamineAdministration.status) != "entered-in-error",
            # Windows last hours, never days: a day either side bounds the rows read.
            col(KetamineAdministration.started_at) >= taken_at - timedelta(days=1),
            col(KetamineAdministration.started_at) <= taken_at + timedelta(days=1),
        )
    ).all()
    sessions = [SessionTimes(s.id, s.started_at, s.ended_at, s.observation_minutes) for s in around]
    return session_at(taken_at, sessions)


def _plausible(name: str, sent: fm.SentValue) -> int:
    (low, high), unit, what = _BOUNDS[name]
    value = sent.value
    if isinstance(value, float) and not value.is_integer():
        raise refused(fm.MappingError(sent.location, f"{value} is not a whole number of {unit}", code="value"))
    if not low <= value <= high:
        raise refused(
            fm.MappingError(
                sent.location,
                f"{what} {value:g} {unit} is not a possible value ({low}-{high} {unit}); check the value and its unit",
                code="value",
            )
        )
    return int(value)
