"""The Observations recorded at a ketamine/esketamine session, linked to it by Observation.partOf.

Vital signs use the R4 vital-signs LOINC codes and UCUM units; body weight (the basis of a mg/kg dose) is a
vital sign too. MOAA/S and CADSS have no LOINC code and use our observation CodeSystem. An adverse event is an
Observation (valueString description, a boolean "serious" component, effective = onset), because every EHR
we target accepts Observation writes and none accepts AdverseEvent writes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from .codes import (
    BODY_WEIGHT,
    BP_PANEL,
    DIASTOLIC,
    HEART_RATE,
    LOINC,
    OBSERVATION_CATEGORY,
    SPO2,
    SPO2_GENERIC,
    SYSTOLIC,
    UCUM,
)
from .definitions import OBSERVATION, code_system_url, coding
from .errors import MappingError
from .identity import base_resource, instant, reference
from .reading import as_list, as_object, aware_datetime, codings, expect_type, number, optional_str
from .records import KetamineAdministrationRecord
from .release import Observation, build

_VITAL_SIGNS: Final = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
_SURVEY: Final = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
_ROLE_INDEX: Final = re.compile(r"/(?:vitals|adverse-event)-(\d+)(?:-[a-z0-9]+)?$")


def _loinc(code: tuple[str, str]) -> dict[str, Any]:
    return {"system": LOINC, "code": code[0], "display": code[1]}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def session_observations(
    record: KetamineAdministrationRecord, *, canonical_base: str, part_of: dict[str, Any]
) -> list[Observation]:
    """Every Observation of the session; part_of is the reference to the administration (or its Procedure)."""

    def observation(
        role: str, summary: str, category: dict[str, Any], code: dict[str, Any], **rest: Any
    ) -> Observation:
        head = base_resource("Observation", canonical_base, "ketamine-administration", record, summary, role=role)
        body = {
            # A session recorded in error takes its observations with it.
            "status": "entered-in-error" if record.status == "entered-in-error" else "final",
            "category": [category],
            "code": code,
            "subject": reference("Patient", record.patient_id),
        }
        return build(Observation, head | {"partOf": [part_of]} | body | rest)

    found: list[Observation] = []
    for i, reading in enumerate(record.vital_signs):
        taken = instant(reading.taken_at)
        if reading.systolic_mmhg is not None and reading.diastolic_mmhg is not None:
            found.append(
                observation(
                    f"vitals-{i}-bp",
                    f"Blood pressure {reading.systolic_mmhg}/{reading.diastolic_mmhg} mmHg",
                    _VITAL_SIGNS,
                    {"coding": [_loinc(BP_PANEL)]},
                    effectiveDateTime=taken,
                    component=[
                        {
                            "code": {"coding": [_loinc(SYSTOLIC)]},
                            "valueQuantity": _quantity(reading.systolic_mmhg, "mm[Hg]"),
                        },
                        {
                            "code": {"coding": [_loinc(DIASTOLIC)]},
                            "valueQuantity": _quantity(reading.diastolic_mmhg, "mm[Hg]"),
                        },
                    ],
                )
            )
        if reading.heart_rate_bpm is not None:
            found.append(
                observation(
                    f"vitals-{i}-hr",
                    f"Heart rate {reading.heart_rate_bpm}/min",
                    _VITAL_SIGNS,
                    {"coding": [_loinc(HEART_RATE)]},
                    effectiveDateTime=taken,
                    valueQuantity=_quantity(reading.heart_rate_bpm, "/min"),
                )
            )
        if reading.spo2_percent is not None:
            found.append(
                observation(
                    f"vitals-{i}-spo2",
                    f"SpO2 {reading.spo2_percent} %",
                    _VITAL_SIGNS,
                    {"coding": [_loinc(SPO2), _loinc(SPO2_GENERIC)]},
                    effectiveDateTime=taken,
                    valueQuantity=_quantity(reading.spo2_percent, "%"),
                )
            )
    session_time = instant(record.ended_at or record.started_at)
    if record.body_weight_kg is not None:
        found.append(
            observation(
                "body-weight",
                f"Body weight {record.body_weight_kg} kg",
                _VITAL_SIGNS,
                {"coding": [_loinc(BODY_WEIGHT)]},
                effectiveDateTime=instant(record.started_at),
                valueQuantity=_quantity(record.body_weight_kg, "kg"),
            )
        )
    for role, code, score in (
        ("sedation", "moaa-s", record.sedation_score),
        ("dissociation", "cadss-total", record.dissociation_score),
    ):
        if score is not None:
            found.append(
                observation(
                    role,
                    f"{code} {score}",
                    _SURVEY,
                    {"coding": [coding(canonical_base, OBSERVATION, code)]},
                    effectiveDateTime=session_time,
                    valueInteger=score,
                )
            )
    for i, event in enumerate(record.adverse_events):
        extra: dict[str, Any] = {"effectiveDateTime": instant(event.onset_at)} if event.onset_at else {}
        found.append(
            observation(
                f"adverse-event-{i}",
                f"Adverse event: {event.description}",
                _SURVEY,
                {"coding": [coding(canonical_base, OBSERVATION, "adverse-event")]},
                valueString=event.description,
                component=[
                    {
                        "code": {"coding": [coding(canonical_base, OBSERVATION, "adverse-event-serious")]},
                        "valueBoolean": event.serious,
                    }
                ],
                **extra,
            )
        )
    return found


def session_fields_from_fhir(observations: Sequence[dict[str, Any]], *, canonical_base: str) -> dict[str, Any]:
    """vital_signs, body_weight_kg, sedation/dissociation scores and adverse_events from the session's Observations.

    Readings are regrouped by the index in our identifier, else by their effective time.
    """
    ours = code_system_url(canonical_base, OBSERVATION)
    readings: dict[str, dict[str, Any]] = {}
    events: dict[str, dict[str, Any]] = {}
    fields: dict[str, Any] = {}
    for n, observation in enumerate(observations):
        where = f"Observation[{n}]"
        expect_type(observation, "Observation")
        if observation.get("status") in ("entered-in-error", "cancelled"):
            continue
        codes = {(s, c) for s, c, _ in codings(observation.get("code"), f"{where}.code")}
        key = _group_key(observation, where)
        if (LOINC, BP_PANEL[0]) in codes:
            reading = readings.setdefault(key, {"taken_at": _effective(observation, where)})
            reading["systolic_mmhg"] = _component(observation, SYSTOLIC[0], where)
            reading["diastolic_mmhg"] = _component(observation, DIASTOLIC[0], where)
        elif (LOINC, HEART_RATE[0]) in codes:
            readings.setdefault(key, {"taken_at": _effective(observation, where)})["heart_rate_bpm"] = _whole(
                _quantity_value(observation, where, "/min"), f"{where}.valueQuantity"
            )
        elif (LOINC, SPO2[0]) in codes or (LOINC, SPO2_GENERIC[0]) in codes:
            readings.setdefault(key, {"taken_at": _effective(observation, where)})["spo2_percent"] = _whole(
                _quantity_value(observation, where, "%"), f"{where}.valueQuantity"
            )
        elif (LOINC, BODY_WEIGHT[0]) in codes:
            fields["body_weight_kg"] = _quantity_value(observation, where, "kg")
        elif (ours, "moaa-s") in codes:
            fields["sedation_score"] = _integer(observation, where)
        elif (ours, "cadss-total") in codes:
            fields["dissociation_score"] = _integer(observation, where)
        elif (ours, "adverse-event") in codes:
            # Without our identifier, events at the same (or no) time stay apart by arrival order.
            events[key if key.startswith("0:") else f"{key}:{n:06d}"] = _adverse_event(observation, where, ours)
        else:
            raise MappingError(
                f"{where}.code", "is not an observation we record at a ketamine session", code="not-supported"
            )
    fields["vital_signs"] = [readings[k] for k in sorted(readings)]
    fields["adverse_events"] = [events[k] for k in sorted(events)]
    return fields


def _group_key(observation: dict[str, Any], where: str) -> str:
    for identifier in as_list(observation.get("identifier"), f"{where}.identifier"):
        match = _ROLE_INDEX.search(str(as_object(identifier, f"{where}.identifier").get("value", "")))
        if match:
            return f"0:{int(match.group(1)):06d}"
    return f"1:{observation.get('effectiveDateTime', '')}"


def _effective(observation: dict[str, Any], where: str) -> str:
    if "effectiveDateTime" in observation:
        return aware_datetime(observation["effectiveDateTime"], f"{where}.effectiveDateTime")
    period = observation.get("effectivePeriod")
    if isinstance(period, dict) and "start" in period:
        return aware_datetime(period["start"], f"{where}.effectivePeriod.start")
    raise MappingError(f"{where}.effective[x]", "a vital sign needs the time it was taken", code="required")


def _quantity_value(data: dict[str, Any], where: str, unit: str) -> float | int:
    quantity = data.get("valueQuantity")
    if quantity is None:
        raise MappingError(f"{where}.valueQuantity", "is required", code="required")
    quantity = as_object(quantity, f"{where}.valueQuantity")
    code = quantity.get("code", quantity.get("unit"))
    if code != unit:
        raise MappingError(f"{where}.valueQuantity.code", f"expected UCUM {unit!r}, got {code!r}", code="value")
    return number(quantity.get("value"), f"{where}.valueQuantity.value")


def _whole(value: float | int, where: str) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise MappingError(where, f"{value} is not a whole number", code="value")
    return int(value)


def _component(observation: dict[str, Any], loinc: str, where: str) -> int:
    for i, component in enumerate(as_list(observation.get("component"), f"{where}.component")):
        part = as_object(component, f"{where}.component[{i}]")
        if any(s == LOINC and c == loinc for s, c, _ in codings(part.get("code"), f"{where}.component[{i}].code")):
            return _whole(_quantity_value(part, f"{where}.component[{i}]", "mm[Hg]"), f"{where}.component[{i}]")
    raise MappingError(f"{where}.component", f"the blood pressure panel has no {loinc} component", code="required")


def _integer(observation: dict[str, Any], where: str) -> int:
    value = observation.get("valueInteger")
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"{where}.valueInteger", "a score needs valueInteger", code="required")
    return value


def _adverse_event(observation: dict[str, Any], where: str, ours: str) -> dict[str, Any]:
    description = optional_str(observation, "valueString", where)
    if description is None:
        raise MappingError(f"{where}.valueString", "an adverse event needs a description", code="required")
    serious = False
    for i, component in enumerate(as_list(observation.get("component"), f"{where}.component")):
        part = as_object(component, f"{where}.component[{i}]")
        if any(s == ours and c == "adverse-event-serious" for s, c, _ in codings(part.get("code"), where)):
            serious = part.get("valueBoolean") is True
    onset = observation.get("effectiveDateTime")
    return {
        "description": description,
        "serious": serious,
        "onset_at": aware_datetime(onset, f"{where}.effectiveDateTime") if onset is not None else None,
    }
