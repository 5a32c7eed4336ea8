"""Taking in a FHIR R4 QuestionnaireResponse (a JSON dict) as instrument answers ready to score.

The instrument is recognised, in order, by: our own canonical; a registered external Questionnaire; a LOINC
panel code ending the canonical (http://loinc.org/q/44249-1); the LOINC codes in the answered linkIds
(US Core, LHC-Forms and ONC BHP responses carry them as "/44250-9").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._fhir_json import (
    as_list,
    as_object,
    loinc_in_link_id,
    lookup_coding,
    number,
    optional_str,
    required_str,
)
from .answers import Coding, ItemAnswer
from .errors import IntakeError
from .external import find_registered
from .external_questionnaire import ExternalQuestionnaire
from .instrument import Instrument, Item
from .registry import instrument_for_canonical, instrument_for_item_codes, instrument_for_panel_code
from .scoring import ScoringError, resolve_ordinal
from .sdc_fhirpath import calculated_total

_STATUSES = frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})
_VALUE_FIELDS = {
    "valueInteger": "value_integer",
    "valueDecimal": "value_decimal",
    "valueBoolean": "value_boolean",
    "valueString": "value_string",
}


@dataclass(frozen=True, slots=True)
class IntakeResponse:
    instrument: Instrument
    answers: list[ItemAnswer]
    sent_total: float | None
    authored: datetime | None
    status: str
    subject_reference: str | None
    questionnaire: str | None
    # What the registered Questionnaire's own FHIRPath calculatedExpression yields, to compare with ours.
    calculated_total: float | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    location: str
    link_id: str
    value_key: str
    value: Any


def intake_questionnaire_response(
    resource: Any, registered: Mapping[str, ExternalQuestionnaire] | None = None
) -> IntakeResponse:
    """Read a QuestionnaireResponse; registered: ExternalQuestionnaire.key -> registration (per tenant)."""
    root = "QuestionnaireResponse"
    qr = as_object(resource, root)
    if qr.get("resourceType") != root:
        raise IntakeError(f"{root}.resourceType", f"expected {root!r}, got {qr.get('resourceType')!r}")
    status = required_str(qr.get("status"), f"{root}.status")
    if status not in _STATUSES:
        raise IntakeError(f"{root}.status", f"{status!r} is not a QuestionnaireResponse status")
    canonical = optional_str(qr.get("questionnaire"), f"{root}.questionnaire")
    subject = as_object(qr.get("subject", {}), f"{root}.subject")
    answered = list(_answers(qr, root))

    external = find_registered(canonical, registered or {}) if canonical else None
    instrument = external.instrument if external else _recognise(canonical, answered)
    answers: list[ItemAnswer] = []
    sent_total: float | None = None
    for answer in answered:
        item = _their_item(instrument, external, answer)
        if item == "total":
            sent_total = _total_value(answer)
        elif isinstance(item, Item):
            answers.append(_to_item_answer(instrument, external, item, answer))
    return IntakeResponse(
        instrument=instrument,
        answers=answers,
        sent_total=sent_total,
        authored=_authored(qr.get("authored"), f"{root}.authored"),
        status=status,
        subject_reference=optional_str(subject.get("reference"), f"{root}.subject.reference"),
        questionnaire=canonical,
        calculated_total=calculated_total(external, qr) if external else None,
    )


def _answers(container: Mapping[str, Any], location: str, seen: set[str] | None = None) -> Iterator[_Answer]:
    """Every answered item, depth first; a linkId answered twice is rejected (our items take one answer)."""
    seen = set() if seen is None else seen
    for index, raw in enumerate(as_list(container.get("item"), f"{location}.item")):
        item_location = f"{location}.item[{index}]"
        item = as_object(raw, item_location)
        link_id = required_str(item.get("linkId"), f"{item_location}.linkId")
        raw_answers = as_list(item.get("answer"), f"{item_location}.answer")
        if raw_answers:
            if link_id in seen:
                raise IntakeError(f"{item_location}.linkId", f"item {link_id!r} appears twice")
            seen.add(link_id)
        if len(raw_answers) > 1:
            raise IntakeError(
                f"{item_location}.answer",
                f"item {link_id!r} has {len(raw_answers)} answers; instrument items take one",
            )
        for a_index, raw_answer in enumerate(raw_answers):
            answer_location = f"{item_location}.answer[{a_index}]"
            answer = as_object(raw_answer, answer_location)
            keys = [key for key in answer if key.startswith("value")]
            if len(keys) != 1:
                found = ", ".join(keys) or "none"
                raise IntakeError(answer_location, f"an answer needs exactly one value[x], found {found}")
            yield _Answer(answer_location, link_id, keys[0], answer[keys[0]])
            yield from _answers(answer, answer_location, seen)
        yield from _answers(item, item_location, seen)


def _recognise(canonical: str | None, answered: list[_Answer]) -> Instrument:
    if canonical:
        ours = instrument_for_canonical(canonical)
        if ours is not None:
            return ours
        panel = loinc_in_link_id(canonical.partition("|")[0])
        by_panel = instrument_for_panel_code(panel) if panel else None
        if by_panel is not None:
            return by_panel
    codes = [loinc_in_link_id(answer.link_id) for answer in answered]
    by_items = instrument_for_item_codes(c for c in codes if c) if all(codes) else None
    if by_items is None:
        raise IntakeError(
            "QuestionnaireResponse.questionnaire",
            f"unknown questionnaire {canonical!r}: not one of ours, not registered, and its "
            "items are not LOINC-coded items of a known instrument",
        )
    return by_items


def _their_item(instrument: Instrument, external: ExternalQuestionnaire | None, answer: _Answer) -> Item | str | None:
    """Our item for an answered linkId, "total" for the sent total, None for a registered-but-ignored item."""
    if external is not None:
        if answer.link_id == external.total_link_id:
            return "total"
        if answer.link_id in external.ignored_link_ids:
            return None
        target = external.link_ids.get(answer.link_id)
        item = instrument.item(target) if target else None
    else:
        if answer.link_id == instrument.total_link_id and instrument.item(answer.link_id) is None:
            return "total"
        item = instrument.item(answer.link_id)
        loinc = loinc_in_link_id(answer.link_id)
        if item is None and loinc is not None:
            item = instrument.item_for_loinc(loinc)
            if item is None and loinc == instrument.total_loinc:
                return "total"
    if item is None:
        raise IntakeError(answer.location, f"{instrument.title} has no item {answer.link_id!r}")
    return item


def _total_value(answer: _Answer) -> float:
    if answer.value_key in ("valueDecimal", "valueInteger"):
        return number(answer.value, answer.location)
    if answer.value_key == "valueQuantity":
        return number(as_object(answer.value, answer.location).get("value"), f"{answer.location}.value")
    if answer.value_key == "valueString":
        # Seen in the wild: US Core's PHQ-9 total Observation example carries "12".
        try:
            return float(answer.value)
        except (TypeError, ValueError):
            pass
    raise IntakeError(answer.location, f"total score {answer.value!r} ({answer.value_key}) is not a number")


def _to_item_answer(
    instrument: Instrument, external: ExternalQuestionnaire | None, item: Item, answer: _Answer
) -> ItemAnswer:
    try:
        converted = _convert(item, external, answer)
        resolve_ordinal(item, converted)
    except ScoringError as error:
        raise IntakeError(answer.location, str(error)) from error
    except ValueError as error:  # pydantic validation of the value
        raise IntakeError(answer.location, f"item {answer.link_id!r}: {error}") from error
    return converted


def _convert(item: Item, external: ExternalQuestionnaire | None, answer: _Answer) -> ItemAnswer:
    link_id = item.link_id
    if answer.value_key == "valueCoding":
        raw = as_object(answer.value, answer.location + ".valueCoding")
        coding = Coding(system=raw.get("system"), code=raw.get("code"), display=raw.get("display"))
        table = external.ordinals.get(answer.link_id) if external else None
        if table:
            return _translate(item, table, coding, answer)
        return ItemAnswer(link_id=link_id, value_coding=coding)
    field = _VALUE_FIELDS.get(answer.value_key)
    if field is None:
        raise IntakeError(answer.location, f"item {answer.link_id!r}: {answer.value_key} cannot answer it")
    return ItemAnswer.model_validate({"link_id": link_id, field: answer.value}, strict=True)


def _translate(item: Item, table: Mapping[str, int], coding: Coding, answer: _Answer) -> ItemAnswer:
    """Their code -> its ordinal in their Questionnaire -> our answer with that score (never by position)."""
    ordinal = lookup_coding(table, coding.system, coding.code)
    if ordinal is None:
        raise IntakeError(
            answer.location,
            f"item {answer.link_id!r}: code {coding.code!r} is not among the registered Questionnaire's answer options",
        )
    ours = next((o for o in item.options if o.score == ordinal), None)
    if ours is None:
        return ItemAnswer(link_id=item.link_id, value_integer=ordinal)
    return ItemAnswer(
        link_id=item.link_id, value_coding=Coding(system=ours.system, code=ours.code, display=ours.display)
    )


def _authored(value: Any, location: str) -> datetime | None:
    text = optional_str(value, location)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    # A partial date ("2024-02") would need invented precision to become an instant: refuse it.
    if parsed is None or "T" not in text or parsed.tzinfo is None:
        raise IntakeError(location, f"{text!r} is not a full dateTime with a time zone")
    return parsed
