"""A score Observation (an EHR flowsheet row, a US Core screening-assessment Observation) → its structure.

The service's one Observation intake (service/intake/observation.py) reads a survey Observation here and lets the
instruments say what its code and components mean. Read:
- the total, by the instrument's total LOINC code (`totals`, from the instrument definitions; CLINICAL.md §2:
  PHQ-9 44261-6, GAD-7 70274-6, …), in any numeric value form: valueInteger, valueQuantity without a unit or with
  UCUM's `{score}`, valueString holding a number ("12", the US Core 7 example), valueDecimal (not R4, but sent);
- one `component` per item when the sender has them (LOINC item codes, answers as LL358-3 codings or numbers);
- a US Core panel (PHQ-9 panel 44249-1) with its `hasMember` Observations folded into one Observation by
  `fold_panel` (a Bundle carries the members beside the panel).
A coded value (valueCodeableConcept) is not a number and is refused; so is a quantity with a real unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .codes import LOINC, OBSERVATION_CATEGORY
from .errors import MappingError
from .identity import source_from
from .reading import (
    ReferenceResolver,
    as_list,
    as_object,
    aware_datetime,
    codings,
    expect_type,
    number,
    parse_reference,
    resolve,
    resolve_subject,
)

_WHERE: Final = "Observation"
# Observation.status -> the stored response status; registered/cancelled/entered-in-error/unknown hold no score.
_STATUS: Final = {"final": "completed", "amended": "amended", "corrected": "amended", "preliminary": "in-progress"}
_CLINICIANS: Final = frozenset({"Practitioner", "PractitionerRole"})
# A score has no unit: none, UCUM unity "1", or the UCUM annotation {score} US Core and Epic send.
_SCORE_UNITS: Final = frozenset({"", "1", "{score}", "{Score}", "score", "{#}"})
_NUMERIC_VALUES: Final = ("valueInteger", "valueQuantity", "valueString", "valueDecimal")


@dataclass(frozen=True, slots=True)
class SentComponent:
    """One item answer sent as a component; the instruments decide which item its code names."""

    location: str  # Observation.component[2]
    codes: tuple[str, ...]  # its LOINC codes
    value_key: str  # valueCoding, valueInteger or valueDecimal: the form scoring reads
    value: Any


@dataclass(frozen=True, slots=True)
class SentScoreObservation:
    header: dict[str, Any]  # QuestionnaireResponseCreate fields but instrument, answers and the total
    instrument: str  # our instrument key, from the total code
    total_code: str
    total: float | None  # None: no value sent (the components give it)
    total_location: str  # Observation.valueInteger, …: where a refusal of the total points
    components: tuple[SentComponent, ...]


def score_codes(observation: Mapping[str, Any], totals: Mapping[str, str]) -> str | None:
    """The instrument total LOINC code of an Observation, if it has one."""
    return next(
        (c for s, c, _ in codings(observation.get("code"), f"{_WHERE}.code") if s == LOINC and c in totals), None
    )


def is_survey(observation: Mapping[str, Any]) -> bool:
    for n, concept in enumerate(as_list(observation.get("category"), f"{_WHERE}.category")):
        if any(s == OBSERVATION_CATEGORY and c == "survey" for s, c, _ in codings(concept, f"{_WHERE}.category[{n}]")):
            return True
    return False


def read_score_observation(
    observation: dict[str, Any],
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    totals: Mapping[str, str],
    resolve_reference: ReferenceResolver | None = None,
    source_system: str | None = None,
) -> SentScoreObservation:
    """totals: instrument total LOINC code -> our instrument key (from the instrument definitions)."""
    expect_type(observation, _WHERE)
    total_code = score_codes(observation, totals)
    if total_code is None:
        panel = (
            "; a panel is taken with its hasMember Observations in the same Bundle"
            if "hasMember" in observation
            else ""
        )
        raise MappingError(
            f"{_WHERE}.code",
            "no instrument total code known ("
            + ", ".join(f"LOINC {code} {key.upper()}" for code, key in totals.items())
            + panel
            + "); map your site's code to one of these in the target's code_map",
            code="not-supported",
        )
    status = observation.get("status")
    if status not in _STATUS:
        raise MappingError(
            f"{_WHERE}.status",
            f"{status!r} holds no usable score; send final, amended, corrected or preliminary",
            code="not-supported",
        )
    components = tuple(_components(observation))
    total, total_location = _total(observation, required=not components)
    header = {
        "source": source_from(observation, canonical_base, "questionnaire-response", source_system),
        "patient_id": resolve_subject(observation, _WHERE, resolve_patient),
        "enrollment_id": _first(observation, "basedOn", resolve_reference, "CarePlan"),
        "ketamine_administration_id": _first(observation, "partOf", resolve_reference, "MedicationAdministration"),
        "cbt_session_id": resolve(observation, "encounter", _WHERE, resolve_reference, "Encounter"),
        "authored_at": _effective(observation),
        "author_kind": "clinician" if _performed_by_clinician(observation) else "patient",
        "status": _STATUS[str(status)],
    }
    return SentScoreObservation(header, totals[total_code], total_code, total, total_location, components)


def _total(observation: dict[str, Any], *, required: bool) -> tuple[float | None, str]:
    keys = [key for key in observation if key.startswith("value")]
    if not keys:
        if not required:
            return None, f"{_WHERE}.value[x]"
        absent = observation.get("dataAbsentReason")
        why = f" (dataAbsentReason {next((c for _, c, _ in codings(absent, f'{_WHERE}.dataAbsentReason')), '?')})"
        raise MappingError(
            f"{_WHERE}.value[x]",
            f"no value{why if absent else ''}: a score Observation needs its total as valueInteger, valueQuantity "
            "or a numeric valueString, or one component per item",
            code="required",
        )
    if len(keys) > 1:
        raise MappingError(f"{_WHERE}.value[x]", f"one value[x] allowed, found {', '.join(keys)}", code="invariant")
    return _number(keys[0], observation[keys[0]], _WHERE), f"{_WHERE}.{keys[0]}"


def _number(key: str, value: Any, where: str) -> float:
    location = f"{where}.{key}"
    if key in ("valueInteger", "valueDecimal"):
        return float(number(value, location))
    if key == "valueQuantity":
        quantity = as_object(value, location)
        unit = quantity.get("code", quantity.get("unit"))
        if unit is not None and str(unit).strip() not in _SCORE_UNITS:
            raise MappingError(
                f"{location}.code",
                f"unit {unit!r} is not a score; a total score is unit-less (UCUM {{score}} or none)",
                code="value",
            )
        if quantity.get("comparator") is not None:
            raise MappingError(f"{location}.comparator", "a score is exact; send it without a comparator", code="value")
        return float(number(quantity.get("value"), f"{location}.value"))
    if key == "valueString":
        text = value.strip() if isinstance(value, str) else None
        try:
            return float(text) if text else _not_a_number(location, value)
        except ValueError:
            return _not_a_number(location, value)
    if key == "valueCodeableConcept":
        raise MappingError(
            location,
            "a coded value is not a number: send the total score as valueInteger or valueQuantity",
            code="value",
        )
    raise MappingError(
        location, f"{key} is not a number: send the total score as valueInteger or valueQuantity", code="value"
    )


def _not_a_number(location: str, value: Any) -> float:
    raise MappingError(
        location, f'{value!r} is not a number: send the total score as digits ("12") or as valueInteger', code="value"
    )


def _components(observation: dict[str, Any]) -> list[SentComponent]:
    out = []
    for i, raw in enumerate(as_list(observation.get("component"), f"{_WHERE}.component")):
        where = f"{_WHERE}.component[{i}]"
        component = as_object(raw, where)
        codes = tuple(str(c) for s, c, _ in codings(component.get("code"), f"{where}.code") if s == LOINC and c)
        keys = [key for key in component if key.startswith("value")]
        if len(keys) != 1:
            raise MappingError(
                f"{where}.value[x]",
                f"an item component needs exactly one value[x], found {', '.join(keys) or 'none'}",
                code="required" if not keys else "invariant",
            )
        key, value = keys[0], component[keys[0]]
        if key == "valueCodeableConcept":
            out.append(SentComponent(where, codes, "valueCoding", _answer_coding(value, f"{where}.{key}")))
            continue
        if key not in _NUMERIC_VALUES:
            raise MappingError(
                f"{where}.{key}", f"{key} cannot answer an item: send an answer coding or a number", code="value"
            )
        answer = _number(key, value, where)
        if answer.is_integer():
            out.append(SentComponent(where, codes, "valueInteger", int(answer)))
        else:
            out.append(SentComponent(where, codes, "valueDecimal", answer))
    return out


def _answer_coding(concept: Any, location: str) -> dict[str, Any]:
    """The answer's coding: the LOINC answer code (LL358-3's LA6568-5 …) before a site's own."""
    found = [
        {k: v for k, v in (("system", s), ("code", c), ("display", d)) if v is not None}
        for s, c, d in codings(concept, location)
        if c
    ]
    if not found:
        raise MappingError(f"{location}.coding", "an answer needs a coding with a code", code="required")
    return next((c for c in found if c.get("system") == LOINC), found[0])


def _first(data: dict[str, Any], key: str, resolver: ReferenceResolver | None, expected: str) -> str | None:
    for i, ref in enumerate(as_list(data.get(key), f"{_WHERE}.{key}")):
        found = resolve({"r": ref}, "r", f"{_WHERE}.{key}[{i}]", resolver, expected)
        if found is not None:
            return found
    return None


def _effective(observation: dict[str, Any]) -> str:
    if "effectiveDateTime" in observation:
        return aware_datetime(observation["effectiveDateTime"], f"{_WHERE}.effectiveDateTime")
    if "effectiveInstant" in observation:
        return aware_datetime(observation["effectiveInstant"], f"{_WHERE}.effectiveInstant")
    period = observation.get("effectivePeriod")
    if isinstance(period, dict) and "start" in period:
        return aware_datetime(period["start"], f"{_WHERE}.effectivePeriod.start")
    if "issued" in observation:
        return aware_datetime(observation["issued"], f"{_WHERE}.issued")
    raise MappingError(
        f"{_WHERE}.effective[x]", "a score needs the time it was taken (effectiveDateTime)", code="required"
    )


def _performed_by_clinician(observation: dict[str, Any]) -> bool:
    for ref in as_list(observation.get("performer"), f"{_WHERE}.performer"):
        parsed = parse_reference(str(ref.get("reference", ""))) if isinstance(ref, dict) else None
        if parsed is not None and parsed[0] in _CLINICIANS:
            return True
    return False


# ---- US Core panels -------------------------------------------------------------------------------------------


def member_references(panel: Mapping[str, Any]) -> list[str]:
    """The literal references of a panel's hasMember (empty: not a panel)."""
    found = []
    for i, raw in enumerate(as_list(panel.get("hasMember"), f"{_WHERE}.hasMember")):
        literal = as_object(raw, f"{_WHERE}.hasMember[{i}]").get("reference")
        if not isinstance(literal, str):
            raise MappingError(f"{_WHERE}.hasMember[{i}].reference", "needs a literal reference", code="required")
        found.append(literal)
    return found


def fold_panel(
    panel: dict[str, Any],
    members: Sequence[dict[str, Any]],
    totals: Mapping[str, str],
    panels: Mapping[str, str],
) -> dict[str, Any]:
    """A panel and its member Observations as one Observation: the total member's code and value, each item
    member as a component (US Core PHQ-9 panel 44249-1 → total 44261-6 with nine item components).

    panels: panel LOINC code -> the instrument's total LOINC code, for a panel sent without its total member."""
    total = next((m for m in members if score_codes(m, totals) is not None), None)
    items = [m for m in members if m is not total]
    folded = {k: v for k, v in panel.items() if k not in ("hasMember", "component") and not k.startswith("value")}
    if total is not None:
        folded["code"] = total["code"]
        folded |= {k: v for k, v in total.items() if k.startswith("value")}
    else:
        # No total member: the items give the total; the panel code says which instrument.
        panel_code = next(
            (c for s, c, _ in codings(panel.get("code"), f"{_WHERE}.code") if s == LOINC and c in panels), None
        )
        if panel_code is not None:
            folded["code"] = {"coding": [{"system": LOINC, "code": panels[panel_code]}]}
    folded["component"] = [
        {"code": m.get("code"), **{k: v for k, v in m.items() if k.startswith("value")}} for m in items
    ]
    return folded
