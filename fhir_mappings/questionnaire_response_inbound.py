"""QuestionnaireResponse → a QuestionnaireResponseCreate body with raw answers; the service scores them.

Also a score Observation (a total sent on its own, as US Core does) → the same body with the total as the one
answer, at link id "/<LOINC>" (the instruments' total link-id convention), so it enters as an externally
scored total. Totals come as valueInteger, valueQuantity, valueString ("12", US Core 7 example) or valueDecimal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from .codes import LOINC, TOTAL_LOINC_TO_INSTRUMENT
from .definitions import INSTRUMENT, KETAMINE_SESSION, SENT_TOTAL, extension_url
from .errors import MappingError
from .identity import source_from
from .questionnaire_response import questionnaire_canonical
from .reading import (
    ReferenceResolver,
    as_list,
    as_object,
    aware_datetime,
    codings,
    expect_type,
    extension_value,
    number,
    optional_str,
    parse_reference,
    resolve,
    resolve_subject,
)

_WHERE: Final = "QuestionnaireResponse"
_STATUSES: Final = frozenset({"completed", "in-progress", "amended", "entered-in-error"})
_CLINICIANS: Final = frozenset({"Practitioner", "PractitionerRole"})
_OBSERVATION_STATUS: Final = {
    "final": "completed",
    "amended": "amended",
    "corrected": "amended",
    "preliminary": "in-progress",
}


def response_from_fhir(
    resource: dict[str, Any],
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    resolve_reference: ReferenceResolver | None = None,
    source_system: str | None = None,
    instrument: str | None = None,
) -> dict[str, Any]:
    """instrument: our key for a response to someone else's Questionnaire the caller has recognised."""
    expect_type(resource, _WHERE)
    status = resource.get("status")
    if status not in _STATUSES:
        raise MappingError(f"{_WHERE}.status", f"{status!r} is not a response we store", code="not-supported")
    questionnaire = optional_str(resource, "questionnaire", _WHERE)
    key = _instrument(resource, canonical_base, questionnaire, instrument)
    if "authored" not in resource:
        raise MappingError(f"{_WHERE}.authored", "is required", code="required")
    session = extension_value(resource, extension_url(canonical_base, KETAMINE_SESSION), "valueReference", _WHERE)
    return {
        "source": source_from(resource, canonical_base, "questionnaire-response", source_system),
        "patient_id": resolve_subject(resource, _WHERE, resolve_patient),
        "enrollment_id": _first(resource, "basedOn", resolve_reference, "CarePlan"),
        "instrument": key,
        # Our own canonical is what an absent questionnaire means: it comes back as None.
        "questionnaire": None if questionnaire == questionnaire_canonical(canonical_base, key) else questionnaire,
        "authored_at": aware_datetime(resource["authored"], f"{_WHERE}.authored"),
        "author_kind": _author_kind(resource),
        "status": status,
        "answers": list(_answers(as_list(resource.get("item"), f"{_WHERE}.item"), f"{_WHERE}.item")),
        "ketamine_administration_id": resolve(
            {"s": session}, "s", _WHERE, resolve_reference, "MedicationAdministration"
        )
        if session is not None
        else None,
        "cbt_session_id": resolve(resource, "encounter", _WHERE, resolve_reference, "Encounter"),
        "sent_total": _sent_total(resource, canonical_base),
    }


def _sent_total(resource: dict[str, Any], canonical_base: str) -> float | None:
    value = extension_value(resource, extension_url(canonical_base, SENT_TOTAL), "valueDecimal", _WHERE)
    return float(number(value, f"{_WHERE}.extension(sent-total)")) if value is not None else None


def _instrument(resource: dict[str, Any], canonical_base: str, questionnaire: str | None, given: str | None) -> str:
    key = extension_value(resource, extension_url(canonical_base, INSTRUMENT), "valueCode", _WHERE)
    if isinstance(key, str):
        return key
    prefix = questionnaire_canonical(canonical_base, "")
    if questionnaire is not None and questionnaire.startswith(prefix):
        return questionnaire.removeprefix(prefix).partition("|")[0]
    if given is not None:
        return given
    raise MappingError(
        f"{_WHERE}.questionnaire",
        f"{questionnaire!r} is not one of our Questionnaires and no instrument was given",
        code="not-supported",
    )


def _author_kind(resource: dict[str, Any]) -> str:
    # Who answered (source) decides; else who recorded it (author); self-report is the default.
    for key in ("source", "author"):
        ref = resource.get(key)
        if not isinstance(ref, dict):
            continue
        parsed = parse_reference(str(ref.get("reference", "")))
        kind = parsed[0] if parsed else ref.get("type")
        if kind is not None:
            return "clinician" if kind in _CLINICIANS else "patient"
    return "patient"


def _answers(items: list[Any], location: str) -> Iterator[dict[str, Any]]:
    for i, raw in enumerate(items):
        where = f"{location}[{i}]"
        item = as_object(raw, where)
        answers = as_list(item.get("answer"), f"{where}.answer")
        if len(answers) > 1:
            raise MappingError(
                f"{where}.answer", "more than one answer to one item is not supported", code="not-supported"
            )
        if answers:
            link_id = item.get("linkId")
            if not isinstance(link_id, str) or not link_id:
                raise MappingError(f"{where}.linkId", "is required", code="required")
            answer = as_object(answers[0], f"{where}.answer[0]")
            yield {"link_id": link_id, **_value(answer, f"{where}.answer[0]")}
            yield from _answers(as_list(answer.get("item"), f"{where}.answer[0].item"), f"{where}.answer[0].item")
        yield from _answers(as_list(item.get("item"), f"{where}.item"), f"{where}.item")


def _value(answer: dict[str, Any], where: str) -> dict[str, Any]:
    if "valueCoding" in answer:
        coding = as_object(answer["valueCoding"], f"{where}.valueCoding")
        if not coding.get("code"):
            raise MappingError(f"{where}.valueCoding.code", "is required", code="required")
        return {"value_coding": {k: coding[k] for k in ("system", "code", "display") if k in coding}}
    if "valueInteger" in answer:
        return {"value_integer": int(number(answer["valueInteger"], f"{where}.valueInteger"))}
    if "valueDecimal" in answer:
        return {"value_decimal": float(number(answer["valueDecimal"], f"{where}.valueDecimal"))}
    if "valueString" in answer:
        return {"value_string": answer["valueString"]}
    if "valueBoolean" in answer and isinstance(answer["valueBoolean"], bool):
        return {"value_boolean": answer["valueBoolean"]}
    kinds = [k for k in answer if k.startswith("value")]
    raise MappingError(where, f"answer type {kinds or 'none'} cannot be stored", code="not-supported")


def _first(data: dict[str, Any], key: str, resolver: ReferenceResolver | None, expected: str) -> str | None:
    for i, ref in enumerate(as_list(data.get(key), f"{_WHERE}.{key}")):
        found = resolve({"r": ref}, "r", f"{_WHERE}.{key}[{i}]", resolver, expected)
        if found is not None:
            return found
    return None


def score_observation_from_fhir(
    observation: dict[str, Any],
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    source_system: str | None = None,
) -> dict[str, Any]:
    """A total-score Observation → a QuestionnaireResponseCreate body holding the total as its one answer."""
    expect_type(observation, "Observation")
    total_code = next(
        (
            c
            for s, c, _ in codings(observation.get("code"), "Observation.code")
            if s == LOINC and c in TOTAL_LOINC_TO_INSTRUMENT
        ),
        None,
    )
    if total_code is None:
        hint = " (a panel: send its total member or the QuestionnaireResponse)" if observation.get("hasMember") else ""
        raise MappingError("Observation.code", f"not a total score we know by LOINC{hint}", code="not-supported")
    status = observation.get("status")
    if status not in _OBSERVATION_STATUS:
        raise MappingError("Observation.status", f"{status!r} is not a usable score", code="not-supported")
    return {
        "source": source_from(observation, canonical_base, "questionnaire-response", source_system),
        "patient_id": resolve_subject(observation, "Observation", resolve_patient),
        "instrument": TOTAL_LOINC_TO_INSTRUMENT[total_code],
        "authored_at": _effective(observation),
        "author_kind": "clinician" if _performed_by_clinician(observation) else "patient",
        "status": _OBSERVATION_STATUS[str(status)],
        "answers": [{"link_id": f"/{total_code}", **_total(observation)}],
    }


def _total(observation: dict[str, Any]) -> dict[str, Any]:
    if "valueInteger" in observation:
        value: float | int = number(observation["valueInteger"], "Observation.valueInteger")
    elif "valueQuantity" in observation:
        quantity = as_object(observation["valueQuantity"], "Observation.valueQuantity")
        value = number(quantity.get("value"), "Observation.valueQuantity.value")
    elif "valueDecimal" in observation:  # not R4 Observation, but sent
        value = number(observation["valueDecimal"], "Observation.valueDecimal")
    elif "valueString" in observation:
        try:
            value = float(str(observation["valueString"]).strip())
        except ValueError:
            raise MappingError(
                "Observation.valueString", f"{observation['valueString']!r} is not a number", code="value"
            ) from None
    else:
        raise MappingError("Observation.value[x]", "a total score needs a numeric value", code="required")
    if float(value).is_integer():
        return {"value_integer": int(value)}
    return {"value_decimal": float(value)}


def _effective(observation: dict[str, Any]) -> str:
    if "effectiveDateTime" in observation:
        return aware_datetime(observation["effectiveDateTime"], "Observation.effectiveDateTime")
    period = observation.get("effectivePeriod")
    if isinstance(period, dict) and "start" in period:
        return aware_datetime(period["start"], "Observation.effectivePeriod.start")
    if "issued" in observation:
        return aware_datetime(observation["issued"], "Observation.issued")
    raise MappingError("Observation.effective[x]", "a score needs the time it was taken", code="required")


def _performed_by_clinician(observation: dict[str, Any]) -> bool:
    for ref in as_list(observation.get("performer"), "Observation.performer"):
        parsed = parse_reference(str(ref.get("reference", ""))) if isinstance(ref, dict) else None
        if parsed is not None and parsed[0] in _CLINICIANS:
            return True
    return False
