"""QuestionnaireResponse → its structure (read_response) or a QuestionnaireResponseCreate body with raw answers.

The service's one QuestionnaireResponse intake (service/intake) reads the structure here and lets the instruments
say what each answer means (an item, the sent total, an ignored item); author, source and item text are kept as sent.

A score Observation is read by score_observation_inbound.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from .definitions import INSTRUMENT, KETAMINE_SESSION, SENT_TOTAL, extension_url
from .errors import MappingError
from .identity import source_from
from .questionnaire_response import CLINICIAN_PLACEHOLDER, questionnaire_canonical
from .reading import (
    ReferenceResolver,
    as_list,
    as_object,
    aware_datetime,
    expect_type,
    extension_value,
    number,
    optional_str,
    parse_reference,
    required_text,
    resolve,
    resolve_subject,
)

_WHERE: Final = "QuestionnaireResponse"
_STATUSES: Final = frozenset({"completed", "in-progress", "amended", "entered-in-error"})
_CLINICIANS: Final = frozenset({"Practitioner", "PractitionerRole"})
_PARTY_KEYS: Final = ("reference", "type", "display")


@dataclass(frozen=True, slots=True)
class SentAnswer:
    """One answered item as the sender wrote it; the instruments decide what it means (an item, the total)."""

    location: str  # QuestionnaireResponse.item[3].answer[0]
    link_id: str
    text: str | None  # the item's text, kept and served back
    value_key: str  # valueCoding, valueInteger, …
    value: Any
    position: int  # among the answered items, depth first


@dataclass(frozen=True, slots=True)
class SentResponse:
    """A QuestionnaireResponse read for its structure: everything but what the answers mean."""

    header: dict[str, Any]  # QuestionnaireResponseCreate fields other than instrument, answers, questionnaire
    questionnaire: str | None  # the canonical as sent
    instrument: str | None  # ours, when the resource names one of our Questionnaires or our instrument extension
    answers: tuple[SentAnswer, ...]


def read_response(
    resource: dict[str, Any],
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    resolve_reference: ReferenceResolver | None = None,
    source_system: str | None = None,
) -> SentResponse:
    """The one structural reader of an incoming QuestionnaireResponse (facade, Bundles, import, pull)."""
    expect_type(resource, _WHERE)
    status = resource.get("status")
    if status not in _STATUSES:
        raise MappingError(f"{_WHERE}.status", f"{status!r} is not a response we store", code="not-supported")
    questionnaire = optional_str(resource, "questionnaire", _WHERE)
    if "authored" not in resource:
        raise MappingError(f"{_WHERE}.authored", "is required", code="required")
    session = extension_value(resource, extension_url(canonical_base, KETAMINE_SESSION), "valueReference", _WHERE)
    answers = tuple(sent_answers(resource))
    header = {
        "source": source_from(resource, canonical_base, "questionnaire-response", source_system),
        "patient_id": resolve_subject(resource, _WHERE, resolve_patient),
        "enrollment_id": _first(resource, "basedOn", resolve_reference, "CarePlan"),
        "authored_at": aware_datetime(resource["authored"], f"{_WHERE}.authored"),
        "author_kind": _author_kind(resource),
        "author": _party(resource, "author"),
        "answered_by": _party(resource, "source"),
        "status": status,
        "ketamine_administration_id": resolve(
            {"s": session}, "s", _WHERE, resolve_reference, "MedicationAdministration"
        )
        if session is not None
        else None,
        "cbt_session_id": resolve(resource, "encounter", _WHERE, resolve_reference, "Encounter"),
        "sent_total": _sent_total(resource, canonical_base),
    }
    return SentResponse(header, questionnaire, _our_instrument(resource, canonical_base, questionnaire), answers)


def response_from_fhir(
    resource: dict[str, Any],
    *,
    canonical_base: str,
    resolve_patient: ReferenceResolver,
    resolve_reference: ReferenceResolver | None = None,
    source_system: str | None = None,
    instrument: str | None = None,
) -> dict[str, Any]:
    """A QuestionnaireResponseCreate body with every answer raw (the total item too): for our own resources, or
    one the caller has recognised (instrument: our key for a response to someone else's Questionnaire)."""
    sent = read_response(
        resource,
        canonical_base=canonical_base,
        resolve_patient=resolve_patient,
        resolve_reference=resolve_reference,
        source_system=source_system,
    )
    key = sent.instrument or instrument
    if key is None:
        raise MappingError(
            f"{_WHERE}.questionnaire",
            f"{sent.questionnaire!r} is not one of our Questionnaires and no instrument was given",
            code="not-supported",
        )
    return {
        **sent.header,
        "instrument": key,
        "questionnaire": stored_questionnaire(sent.questionnaire, canonical_base, key),
        "answers": [stored_answer(a) for a in sent.answers],
    }


def stored_questionnaire(questionnaire: str | None, canonical_base: str, instrument: str) -> str | None:
    # Our own canonical is what an absent questionnaire means: it comes back as None.
    return None if questionnaire == questionnaire_canonical(canonical_base, instrument) else questionnaire


def _sent_total(resource: dict[str, Any], canonical_base: str) -> float | None:
    value = extension_value(resource, extension_url(canonical_base, SENT_TOTAL), "valueDecimal", _WHERE)
    return float(number(value, f"{_WHERE}.extension(sent-total)")) if value is not None else None


def _our_instrument(resource: dict[str, Any], canonical_base: str, questionnaire: str | None) -> str | None:
    key = extension_value(resource, extension_url(canonical_base, INSTRUMENT), "valueCode", _WHERE)
    if isinstance(key, str):
        return key
    prefix = questionnaire_canonical(canonical_base, "")
    if questionnaire is not None and questionnaire.startswith(prefix):
        return questionnaire.removeprefix(prefix).partition("|")[0]
    return None


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


def _party(resource: dict[str, Any], key: str) -> dict[str, str] | None:
    """author / source as the sender wrote them: kept and served back, never resolved to one of our records.

    None where what was sent is what the author kind already says (the subject itself, or our own "a clinician"
    placeholder): served back as the subject / the placeholder, so a response we wrote reads back unchanged."""
    where = f"{_WHERE}.{key}"
    ref = resource.get(key)
    if ref is None:
        return None
    data = as_object(ref, where)
    party = {k: v for k in _PARTY_KEYS if (v := optional_str(data, k, where)) is not None}
    if not party:
        raise MappingError(where, "a reference needs a reference, type or display", code="required")
    subject = resource.get("subject")
    if party == CLINICIAN_PLACEHOLDER or (
        isinstance(subject, dict) and party == {"reference": subject.get("reference")}
    ):
        return None
    return party


def sent_answers(
    container: dict[str, Any], location: str = _WHERE, seen: set[str] | None = None
) -> Iterator[SentAnswer]:
    """Every answered item, depth first (answer.item and item.item); an item takes one answer, once."""
    seen = set() if seen is None else seen
    for i, raw in enumerate(as_list(container.get("item"), f"{location}.item")):
        where = f"{location}.item[{i}]"
        item = as_object(raw, where)
        link_id = required_text(item.get("linkId"), f"{where}.linkId")
        text = optional_str(item, "text", where)
        answers = as_list(item.get("answer"), f"{where}.answer")
        if len(answers) > 1:
            raise MappingError(
                f"{where}.answer",
                f"item {link_id!r} has {len(answers)} answers; more than one answer to one item is not supported",
                code="not-supported",
            )
        if answers:
            if link_id in seen:
                raise MappingError(f"{where}.linkId", f"item {link_id!r} appears twice", code="invariant")
            seen.add(link_id)
            answer = as_object(answers[0], f"{where}.answer[0]")
            keys = [key for key in answer if key.startswith("value")]
            if len(keys) != 1:
                found = ", ".join(keys) or "none"
                raise MappingError(
                    f"{where}.answer[0]", f"an answer needs exactly one value[x], found {found}", code="invariant"
                )
            yield SentAnswer(f"{where}.answer[0]", link_id, text, keys[0], answer[keys[0]], len(seen) - 1)
            yield from sent_answers(answer, f"{where}.answer[0]", seen)
        yield from sent_answers(item, where, seen)


def stored_answer(answer: SentAnswer) -> dict[str, Any]:
    """An answer in the stored shape (ItemAnswer): its value and the item text as sent."""
    text = {"text": answer.text} if answer.text is not None else {}
    return {"link_id": answer.link_id, **_value(answer.value_key, answer.value, answer.location), **text}


def _value(key: str, value: Any, where: str) -> dict[str, Any]:
    if key == "valueCoding":
        coding = as_object(value, f"{where}.valueCoding")
        if not coding.get("code"):
            raise MappingError(f"{where}.valueCoding.code", "is required", code="required")
        return {"value_coding": {k: coding[k] for k in ("system", "code", "display") if k in coding}}
    if key == "valueInteger":
        number_ = number(value, f"{where}.valueInteger")
        if not float(number_).is_integer():
            raise MappingError(f"{where}.valueInteger", f"{value!r} is not an integer", code="value")
        return {"value_integer": int(number_)}
    if key == "valueDecimal":
        return {"value_decimal": float(number(value, f"{where}.valueDecimal"))}
    if key == "valueString":
        return {"value_string": required_text(value, f"{where}.valueString")}
    if key == "valueBoolean":
        if not isinstance(value, bool):
            raise MappingError(f"{where}.valueBoolean", f"{value!r} is not a boolean", code="structure")
        return {"value_boolean": value}
    raise MappingError(where, f"answer type {key} cannot be stored", code="not-supported")


def _first(data: dict[str, Any], key: str, resolver: ReferenceResolver | None, expected: str) -> str | None:
    for i, ref in enumerate(as_list(data.get(key), f"{_WHERE}.{key}")):
        found = resolve({"r": ref}, "r", f"{_WHERE}.{key}[{i}]", resolver, expected)
        if found is not None:
            return found
    return None
