"""A vital-sign Observation sent on its own (an EHR's flowsheet row) ⇄ a patient's vital-sign record.

What is taken (CLINICAL.md section 1; LOINC, R4 vital signs profiles observation-vitalsigns.html, as US Core's
vital-sign profiles derive them):
- blood pressure panel LOINC 85354-9 with components systolic 8480-6 and diastolic 8462-4 (mm[Hg]);
- systolic 8480-6 or diastolic 8462-4 alone, as their own Observations (mm[Hg]); paired again by time downstream;
- heart rate LOINC 8867-4 (/min);
- oxygen saturation LOINC 59408-5 (by pulse oximetry, US Core) or 2708-6 (arterial, the R4 core code) (%).
Units are UCUM codes, compared exactly: a BP in kPa or a heart rate in "bpm" is refused, never converted.
The record keeps the code the sender used, so the Observation reads back as sent (plus the other SpO2 code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from .codes import BP_PANEL, DIASTOLIC, HEART_RATE, LOINC, OBSERVATION_CATEGORY, SPO2, SPO2_GENERIC, SYSTOLIC, UCUM
from .errors import MappingError
from .identity import base_resource, instant, reference, source_from
from .reading import (
    ReferenceResolver,
    as_list,
    as_object,
    aware_datetime,
    codings,
    expect_type,
    number,
    parse_reference,
    resolve_subject,
)
from .records import RecordLike, VitalSignsLike
from .release import Observation, build

_WHERE: Final = "Observation"
Measure = Literal["blood-pressure", "systolic", "diastolic", "heart-rate", "spo2"]
# LOINC code -> what it measures and its UCUM unit.
VITAL_SIGN_CODES: Final[dict[str, tuple[Measure, str]]] = {
    BP_PANEL[0]: ("blood-pressure", "mm[Hg]"),  # 85354-9
    SYSTOLIC[0]: ("systolic", "mm[Hg]"),  # 8480-6
    DIASTOLIC[0]: ("diastolic", "mm[Hg]"),  # 8462-4
    HEART_RATE[0]: ("heart-rate", "/min"),  # 8867-4
    SPO2[0]: ("spo2", "%"),  # 59408-5
    SPO2_GENERIC[0]: ("spo2", "%"),  # 2708-6
}
_DISPLAY: Final = {code: display for code, display in (BP_PANEL, SYSTOLIC, DIASTOLIC, HEART_RATE, SPO2, SPO2_GENERIC)}
# Statuses of a measurement that was made (R4 observation-status); preliminary/registered/cancelled are not.
_TAKEN_STATUSES: Final = frozenset({"final", "amended", "corrected", "entered-in-error"})


@dataclass(frozen=True)
class SentValue:
    """One number as sent, with the element it came in (for a refusal that names it)."""

    value: float | int
    location: str


@dataclass(frozen=True)
class SentVitalSign:
    """A vital-sign Observation as read: the record body's header and its values, each located."""

    header: dict[str, Any]  # source, patient_id, taken_at, status, loinc, measure
    values: dict[str, SentValue]  # systolic_mmhg / diastolic_mmhg / heart_rate_bpm / spo2_percent
    taken_at_location: str
    part_of: str | None  # our id of the MedicationAdministration it names in partOf, if any


def vital_sign_code(resource: dict[str, Any]) -> str | None:
    """The vital-sign LOINC code an Observation is coded with, or None (then it is not a vital sign we take)."""
    concept = resource.get("code")
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("system") == LOINC and coding.get("code") in VITAL_SIGN_CODES:
            return str(coding["code"])
    return None


def read_vital_sign(
    resource: dict[str, Any],
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    resolve_reference: ReferenceResolver | None = None,
    source_system: str | None = None,
) -> SentVitalSign:
    expect_type(resource, _WHERE)
    code = vital_sign_code(resource)
    if code is None:
        known = ", ".join(f"{c} {_DISPLAY[c]}" for c in VITAL_SIGN_CODES)
        raise MappingError(f"{_WHERE}.code", f"is not a vital sign taken here (LOINC {known})", code="not-supported")
    measure, unit = VITAL_SIGN_CODES[code]
    status = resource.get("status")
    if status not in _TAKEN_STATUSES:
        raise MappingError(
            f"{_WHERE}.status",
            f"{status!r} is not a measurement that was made (send final, amended, corrected or entered-in-error)",
            code="required" if status is None else "not-supported",
        )
    if resource.get("dataAbsentReason") is not None and "valueQuantity" not in resource and measure != "blood-pressure":
        raise MappingError(f"{_WHERE}.value[x]", "no value was taken (dataAbsentReason): nothing to record")
    taken_at, taken_where = _effective(resource)
    values: dict[str, SentValue] = {}
    if measure == "blood-pressure":
        values["systolic_mmhg"] = _component(resource, SYSTOLIC[0])
        values["diastolic_mmhg"] = _component(resource, DIASTOLIC[0])
    else:
        field = {"systolic": "systolic_mmhg", "diastolic": "diastolic_mmhg", "heart-rate": "heart_rate_bpm"}
        values[field.get(measure, "spo2_percent")] = _quantity(resource, _WHERE, unit)
    header = {
        "source": source_from(resource, canonical_base, "vital-sign", source_system),
        "patient_id": resolve_subject(resource, _WHERE, resolve_patient),
        "taken_at": taken_at,
        "status": "final" if status == "corrected" else status,
        "loinc": code,
        "measure": measure,
    }
    return SentVitalSign(header, values, taken_where, _part_of(resource, resolve_reference))


def _effective(resource: dict[str, Any]) -> tuple[str, str]:
    if "effectiveDateTime" in resource:
        where = f"{_WHERE}.effectiveDateTime"
        return aware_datetime(resource["effectiveDateTime"], where), where
    if "effectiveInstant" in resource:
        where = f"{_WHERE}.effectiveInstant"
        return aware_datetime(resource["effectiveInstant"], where), where
    period = resource.get("effectivePeriod")
    if isinstance(period, dict) and "start" in period:
        where = f"{_WHERE}.effectivePeriod.start"
        return aware_datetime(period["start"], where), where
    raise MappingError(
        f"{_WHERE}.effective[x]",
        "a vital sign needs the time it was taken (effectiveDateTime with a time zone)",
        code="required",
    )


def _quantity(data: dict[str, Any], where: str, unit: str) -> SentValue:
    if "valueQuantity" not in data:
        other = next((k for k in data if k.startswith("value")), None)
        if other is not None:
            raise MappingError(f"{where}.{other}", f"a vital sign's value is a valueQuantity in {unit}", code="value")
        raise MappingError(f"{where}.valueQuantity", f"is required (a value in UCUM {unit!r})", code="required")
    quantity = as_object(data["valueQuantity"], f"{where}.valueQuantity")
    system = quantity.get("system")
    if system is not None and system != UCUM:
        raise MappingError(f"{where}.valueQuantity.system", f"expected UCUM ({UCUM}), got {system!r}", code="value")
    sent = quantity.get("code", quantity.get("unit"))
    if sent != unit:
        raise MappingError(
            f"{where}.valueQuantity.code",
            f"expected UCUM {unit!r}, got {sent!r}; send the value in {unit}",
            code="value",
        )
    if "value" not in quantity:
        raise MappingError(f"{where}.valueQuantity.value", "is required", code="required")
    return SentValue(number(quantity["value"], f"{where}.valueQuantity.value"), f"{where}.valueQuantity.value")


def _component(resource: dict[str, Any], loinc: str) -> SentValue:
    for i, component in enumerate(as_list(resource.get("component"), f"{_WHERE}.component")):
        where = f"{_WHERE}.component[{i}]"
        part = as_object(component, where)
        if any(s == LOINC and c == loinc for s, c, _ in codings(part.get("code"), f"{where}.code")):
            return _quantity(part, where, "mm[Hg]")
    raise MappingError(
        f"{_WHERE}.component",
        f"the blood pressure panel has no {loinc} ({_DISPLAY[loinc]}) component: send both systolic 8480-6 and "
        "diastolic 8462-4",
        code="required",
    )


def _part_of(resource: dict[str, Any], resolve_reference: ReferenceResolver | None) -> str | None:
    """The ketamine session the sender says this was measured at (partOf MedicationAdministration/…)."""
    for i, part in enumerate(as_list(resource.get("partOf"), f"{_WHERE}.partOf")):
        literal = as_object(part, f"{_WHERE}.partOf[{i}]").get("reference")
        parsed = parse_reference(literal) if isinstance(literal, str) else None
        if parsed is None or parsed[0] != "MedicationAdministration" or not isinstance(literal, str):
            continue
        found = resolve_reference(literal) if resolve_reference is not None else None
        if found is None:
            raise MappingError(
                f"{_WHERE}.partOf[{i}]",
                f"{literal!r} is not known here: send the MedicationAdministration first, or leave partOf out "
                "(the reading is then matched to a session by its time)",
                code="not-found",
            )
        return found
    return None


# ---- outbound -----------------------------------------------------------------------------------------------


class VitalSignRecord(RecordLike, VitalSignsLike, Protocol):
    """A reading stored on its own (the time and values as a session's embedded readings have them)."""

    @property
    def patient_id(self) -> str: ...
    @property
    def ketamine_administration_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def loinc(self) -> str: ...


def _loinc(code: str) -> dict[str, Any]:
    return {"system": LOINC, "code": code, "display": _DISPLAY[code]}


def _value(value: int, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def vital_sign_resource(record: VitalSignRecord, *, canonical_base: str) -> Observation:
    """The record as a vital-signs Observation (partOf its ketamine session when it was taken at one)."""
    measure, unit = VITAL_SIGN_CODES[record.loinc]
    body: dict[str, Any] = {
        "status": record.status,
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
        "subject": reference("Patient", record.patient_id),
        "effectiveDateTime": instant(record.taken_at),
    }
    if record.ketamine_administration_id is not None:
        body["partOf"] = [reference("MedicationAdministration", record.ketamine_administration_id)]
    if measure == "spo2":
        # Both SpO2 codes: 2708-6 is what the R4 core oxygensat profile requires, 59408-5 what US Core adds.
        body["code"] = {"coding": [_loinc(SPO2[0]), _loinc(SPO2_GENERIC[0])]}
    else:
        body["code"] = {"coding": [_loinc(record.loinc)]}
    if measure == "blood-pressure" and record.systolic_mmhg is not None and record.diastolic_mmhg is not None:
        summary = f"Blood pressure {record.systolic_mmhg}/{record.diastolic_mmhg} mmHg"
        body["component"] = [
            {"code": {"coding": [_loinc(SYSTOLIC[0])]}, "valueQuantity": _value(record.systolic_mmhg, unit)},
            {"code": {"coding": [_loinc(DIASTOLIC[0])]}, "valueQuantity": _value(record.diastolic_mmhg, unit)},
        ]
    else:
        value = {
            "systolic": record.systolic_mmhg,
            "diastolic": record.diastolic_mmhg,
            "heart-rate": record.heart_rate_bpm,
            "spo2": record.spo2_percent,
        }[measure]
        assert value is not None, "a stored vital sign has its value"
        summary = f"{_DISPLAY[record.loinc]} {value} {unit}"
        body["valueQuantity"] = _value(value, unit)
    head = base_resource("Observation", canonical_base, "vital-sign", record, summary)
    return build(Observation, head | body)
