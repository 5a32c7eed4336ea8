"""What the answers of a FHIR R4 QuestionnaireResponse mean: which instrument, which item, the sent total.

fhir_mappings reads the structure (sent_answers: link ids, values, item text, located); this module resolves
them. The instrument is recognised, in order, by: our own canonical; a registered external Questionnaire; a LOINC
panel code ending the canonical (http://loinc.org/q/44249-1); the LOINC codes in the answered linkIds
(US Core, LHC-Forms and ONC BHP responses carry them as "/44250-9").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_mappings.errors import MappingError
from fhir_mappings.questionnaire_response_inbound import SentAnswer, sent_answers
from fhir_mappings.reading import as_object, loinc_in_link_id, number, required_text, text_value

from .answers import Coding, ItemAnswer
from .codes import lookup_coding
from .external import find_registered
from .external_questionnaire import ExternalQuestionnaire
from .instrument import Instrument, Item
from .registry import (
    INSTRUMENTS,
    instrument_for_canonical,
    instrument_for_item_codes,
    instrument_for_panel_code,
)
from .scoring import ScoringError, resolve_ordinal
from .sdc_fhirpath import calculated_total

_STATUSES = frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})
_VALUE_FIELDS = {
    "valueInteger": "value_integer",
    "valueDecimal": "value_decimal",
    "valueBoolean": "value_boolean",
    "valueString": "value_string",
}
_TOTAL_TYPES = frozenset({"valueDecimal", "valueInteger", "valueQuantity", "valueString"})


@dataclass(frozen=True, slots=True)
class SentTotal:
    value: float
    link_id: str
    text: str | None
    position: int  # among the answered items
    value_type: str


@dataclass(frozen=True, slots=True)
class ResolvedAnswers:
    instrument: Instrument
    answers: list[ItemAnswer]
    total: SentTotal | None
    # What the registered Questionnaire's own FHIRPath calculatedExpression yields, to compare with ours.
    calculated_total: float | None = None


@dataclass(frozen=True, slots=True)
class IntakeResponse:
    instrument: Instrument
    answers: list[ItemAnswer]
    sent_total: float | None
    authored: datetime | None
    status: str
    subject_reference: str | None
    questionnaire: str | None
    calculated_total: float | None = None


def resolve_answers(
    resource: Mapping[str, Any],
    answered: Sequence[SentAnswer],
    *,
    canonical: str | None,
    registered: Mapping[str, ExternalQuestionnaire] | None = None,
    ours: str | None = None,
) -> ResolvedAnswers:
    """ours: our instrument key when the response names it (our canonical or instrument extension)."""
    external = find_registered(canonical, registered or {}) if canonical else None
    if external is not None:
        instrument = external.instrument
    elif ours is not None:
        instrument = _ours(ours)
    else:
        instrument = _recognise(canonical, answered)
    answers: list[ItemAnswer] = []
    total: SentTotal | None = None
    for answer in answered:
        item = _their_item(instrument, external, answer)
        if item == "total":
            total = _total(answer)
        elif isinstance(item, Item):
            answers.append(_to_item_answer(instrument, external, item, answer))
    return ResolvedAnswers(
        instrument=instrument,
        answers=answers,
        total=total,
        calculated_total=calculated_total(external, dict(resource)) if external else None,
    )


def intake_questionnaire_response(
    resource: Any, registered: Mapping[str, ExternalQuestionnaire] | None = None
) -> IntakeResponse:
    """The instruments' view of a response on its own (no patient, no record): answers ready to score."""
    root = "QuestionnaireResponse"
    qr = as_object(resource, root)
    if qr.get("resourceType") != root:
        raise MappingError(
            f"{root}.resourceType", f"expected {root!r}, got {qr.get('resourceType')!r}", code="not-supported"
        )
    status = required_text(qr.get("status"), f"{root}.status")
    if status not in _STATUSES:
        raise MappingError(f"{root}.status", f"{status!r} is not a QuestionnaireResponse status", code="code-invalid")
    canonical = text_value(qr.get("questionnaire"), f"{root}.questionnaire")
    subject = as_object(qr.get("subject", {}), f"{root}.subject")
    resolved = resolve_answers(qr, list(sent_answers(qr)), canonical=canonical, registered=registered)
    return IntakeResponse(
        instrument=resolved.instrument,
        answers=resolved.answers,
        sent_total=resolved.total.value if resolved.total else None,
        authored=_authored(qr.get("authored"), f"{root}.authored"),
        status=status,
        subject_reference=text_value(subject.get("reference"), f"{root}.subject.reference"),
        questionnaire=canonical,
        calculated_total=resolved.calculated_total,
    )


def _ours(key: str) -> Instrument:
    instrument = INSTRUMENTS.get(key)
    if instrument is None:
        raise MappingError(
            "QuestionnaireResponse.questionnaire",
            f"unknown instrument {key!r}; known: {', '.join(INSTRUMENTS)}",
            code="not-supported",
        )
    return instrument


def _recognise(canonical: str | None, answered: Sequence[SentAnswer]) -> Instrument:
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
        raise MappingError(
            "QuestionnaireResponse.questionnaire",
            f"unknown questionnaire {canonical!r}: not one of ours, not registered, and its "
            "items are not LOINC-coded items of a known instrument",
            code="not-supported",
        )
    return by_items


def _their_item(
    instrument: Instrument, external: ExternalQuestionnaire | None, answer: SentAnswer
) -> Item | str | None:
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
        raise MappingError(answer.location, f"{instrument.title} has no item {answer.link_id!r}", code="not-supported")
    return item


def _total(answer: SentAnswer) -> SentTotal:
    value: float | None = None
    if answer.value_key in ("valueDecimal", "valueInteger"):
        value = float(number(answer.value, answer.location))
    elif answer.value_key == "valueQuantity":
        value = float(number(as_object(answer.value, answer.location).get("value"), f"{answer.location}.value"))
    elif answer.value_key == "valueString":
        # Seen in the wild: US Core's PHQ-9 total Observation example carries "12".
        try:
            value = float(answer.value)
        except (TypeError, ValueError):
            value = None
    if value is None or answer.value_key not in _TOTAL_TYPES:
        raise MappingError(
            answer.location, f"total score {answer.value!r} ({answer.value_key}) is not a number", code="value"
        )
    return SentTotal(value, answer.link_id, answer.text, answer.position, answer.value_key)


def item_answer(instrument: Instrument, item: Item, answer: SentAnswer) -> ItemAnswer:
    """One sent answer to one of our items (a QuestionnaireResponse item, an Observation component)."""
    return _to_item_answer(instrument, None, item, answer)


def _to_item_answer(
    instrument: Instrument, external: ExternalQuestionnaire | None, item: Item, answer: SentAnswer
) -> ItemAnswer:
    try:
        converted = _convert(item, external, answer)
        resolve_ordinal(item, converted)
    except ScoringError as error:
        raise MappingError(answer.location, str(error), code="code-invalid") from error
    except ValueError as error:  # pydantic validation of the value
        raise MappingError(answer.location, f"item {answer.link_id!r}: {error}", code="value") from error
    # The item text travels with the answer, as sent, so it is served back.
    return converted.model_copy(update={"text": answer.text}) if answer.text is not None else converted


def _convert(item: Item, external: ExternalQuestionnaire | None, answer: SentAnswer) -> ItemAnswer:
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
        raise MappingError(
            answer.location, f"item {answer.link_id!r}: {answer.value_key} cannot answer it", code="not-supported"
        )
    return ItemAnswer.model_validate({"link_id": link_id, field: answer.value}, strict=True)


def _translate(item: Item, table: Mapping[str, int], coding: Coding, answer: SentAnswer) -> ItemAnswer:
    """Their code -> its ordinal in their Questionnaire -> our answer with that score (never by position)."""
    ordinal = lookup_coding(table, coding.system, coding.code)
    if ordinal is None:
        raise MappingError(
            answer.location,
            f"item {answer.link_id!r}: code {coding.code!r} is not among the registered Questionnaire's answer options",
            code="code-invalid",
        )
    ours = next((o for o in item.options if o.score == ordinal), None)
    if ours is None:
        return ItemAnswer(link_id=item.link_id, value_integer=ordinal)
    return ItemAnswer(
        link_id=item.link_id, value_coding=Coding(system=ours.system, code=ours.code, display=ours.display)
    )


def _authored(value: Any, location: str) -> datetime | None:
    text = text_value(value, location)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    # A partial date ("2024-02") would need invented precision to become an instant: refuse it.
    if parsed is None or "T" not in text or parsed.tzinfo is None:
        raise MappingError(location, f"{text!r} is not a full dateTime with a time zone", code="value")
    return parsed
