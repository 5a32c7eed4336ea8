"""Registering a Questionnaire someone else published (SDC, LHC-Forms, an EHR's own) as our instrument.

Works from the JSON dict, never a strict model: the LHC-Forms PHQ-9 puts a number where R4 requires a string
(questionnaire-optionPrefix), so strict parsing rejects a form that is fine for scoring. Only linkId, type,
code, answerOption.valueCoding, the ordinal extensions, contained ValueSets and expressions are read, and
those strictly; everything else (optionPrefix included) is ignored on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fhir_mappings.errors import MappingError
from fhir_mappings.reading import (
    as_list,
    as_object,
    loinc_codes,
    loinc_in_link_id,
    number,
)
from fhir_mappings.reading import located_extensions as extensions
from fhir_mappings.reading import required_text as required_str
from fhir_mappings.reading import text_value as optional_str

from .codes import CALCULATED_EXPRESSION_URL, ITEM_WEIGHT_URL, ORDINAL_VALUE_URL, coding_key
from .external_questionnaire import ExternalQuestionnaire
from .instrument import Instrument
from .registry import INSTRUMENTS
from .sdc_fhirpath import calculated_total

_CONTAINER_TYPES = frozenset({"group", "display"})


def find_registered(canonical: str, registered: Mapping[str, ExternalQuestionnaire]) -> ExternalQuestionnaire | None:
    """Exact url|version first; a bare url matches a versioned registration only if it is the only one."""
    if canonical in registered:
        return registered[canonical]
    base = canonical.partition("|")[0]
    matches = [q for q in registered.values() if q.canonical == base]
    return matches[0] if len(matches) == 1 else None


def register_external_questionnaire(
    questionnaire: Mapping[str, Any],
    instrument_key: str,
    *,
    canonical: str | None = None,
    link_ids: Mapping[str, str | None] | None = None,
) -> ExternalQuestionnaire:
    """Map a foreign Questionnaire onto an instrument.

    Items are matched by LOINC code (item.code or the linkId); link_ids maps the rest explicitly (their
    linkId -> our link id, or None to ignore the item). canonical is needed when the Questionnaire has no url
    (the LHC-Forms PHQ-9 has none). Raises MappingError locating the first problem.
    """
    root = "Questionnaire"
    q = as_object(questionnaire, root)
    if q.get("resourceType") != "Questionnaire":
        raise MappingError(
            f"{root}.resourceType", f"expected 'Questionnaire', got {q.get('resourceType')!r}", code="not-supported"
        )
    instrument = INSTRUMENTS.get(instrument_key)
    if instrument is None:
        raise MappingError(
            root, f"unknown instrument {instrument_key!r}; known: {', '.join(INSTRUMENTS)}", code="not-supported"
        )
    url = canonical or optional_str(q.get("url"), f"{root}.url")
    if not url:
        raise MappingError(
            f"{root}.url", "the Questionnaire has no url; pass canonical= to register it", code="required"
        )
    explicit = dict(link_ids or {})
    value_sets = _contained_value_sets(q)

    mapped: dict[str, str] = {}
    ignored: list[str] = []
    ordinals: dict[str, dict[str, int]] = {}
    total_link_id: str | None = None
    for location, item in _answerable_items(q, root):
        link_id = required_str(item.get("linkId"), f"{location}.linkId")
        if link_id in mapped or link_id in ignored or link_id == total_link_id:
            raise MappingError(f"{location}.linkId", f"linkId {link_id!r} is used twice", code="invariant")
        target = _target(instrument, item, link_id, explicit, location)
        if target is None:
            ignored.append(link_id)
            continue
        if target == "total":
            total_link_id = link_id
            continue
        if target in mapped.values():
            raise MappingError(location, f"a second item maps to {instrument.title} item {target!r}", code="invariant")
        mapped[link_id] = target
        table = _ordinal_table(item, value_sets, location)
        _check_ordinals(instrument, target, table, location)
        ordinals[link_id] = table

    if not mapped:
        raise MappingError(root, f"no item maps to {instrument.title}", code="not-supported")
    external = ExternalQuestionnaire(
        canonical=url.partition("|")[0],
        version=optional_str(q.get("version"), f"{root}.version"),
        instrument_key=instrument.key,
        link_ids=mapped,
        ignored_link_ids=tuple(ignored),
        total_link_id=total_link_id,
        ordinals=ordinals,
        questionnaire=dict(q),
    )
    _check_expression_evaluates(external)
    return external


def _target(
    instrument: Instrument,
    item: Mapping[str, Any],
    link_id: str,
    explicit: Mapping[str, str | None],
    location: str,
) -> str | None:
    """Our link id for their item, "total" for the total item, None to ignore."""
    if link_id in explicit:
        target = explicit[link_id]
        if target is not None and target != "total" and instrument.item(target) is None:
            raise MappingError(
                location, f"link_ids maps {link_id!r} to {target!r}, not an item of {instrument.title}", code="value"
            )
        return target
    codes = [*loinc_codes(item, location), *filter(None, [loinc_in_link_id(link_id)])]
    for code in codes:
        ours = instrument.item_for_loinc(code)
        if ours is not None:
            return ours.link_id
        if code == instrument.total_loinc:
            return "total"
    if any(True for _ in extensions(item, CALCULATED_EXPRESSION_URL, location)):
        return "total"
    raise MappingError(
        location,
        f"item {link_id!r} maps to no item of {instrument.title}; pass "
        f"link_ids={{{link_id!r}: <our link id or None to ignore>}}",
        code="not-supported",
    )


def _answerable_items(container: Mapping[str, Any], location: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, raw in enumerate(as_list(container.get("item"), f"{location}.item")):
        item_location = f"{location}.item[{index}]"
        item = as_object(raw, item_location)
        if item.get("type") not in _CONTAINER_TYPES:
            yield item_location, item
        yield from _answerable_items(item, item_location)


def _contained_value_sets(q: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Ordinals of contained ValueSets, keyed "#id" as answerValueSet refers to them."""
    tables: dict[str, dict[str, int]] = {}
    for index, raw in enumerate(as_list(q.get("contained"), "Questionnaire.contained")):
        location = f"Questionnaire.contained[{index}]"
        resource = as_object(raw, location)
        if resource.get("resourceType") != "ValueSet" or not isinstance(resource.get("id"), str):
            continue
        table: dict[str, int] = {}
        compose = as_object(resource.get("compose", {}), f"{location}.compose")
        for i, raw_include in enumerate(as_list(compose.get("include"), f"{location}.compose.include")):
            include_location = f"{location}.compose.include[{i}]"
            include = as_object(raw_include, include_location)
            system = optional_str(include.get("system"), f"{include_location}.system")
            for j, raw_concept in enumerate(as_list(include.get("concept"), f"{include_location}.concept")):
                concept_location = f"{include_location}.concept[{j}]"
                _add_ordinal(table, system, as_object(raw_concept, concept_location), concept_location)
        expansion = as_object(resource.get("expansion", {}), f"{location}.expansion")
        contained_codes = as_list(expansion.get("contains"), f"{location}.expansion.contains")
        for i, raw_contains in enumerate(contained_codes):
            contains_location = f"{location}.expansion.contains[{i}]"
            contains = as_object(raw_contains, contains_location)
            system = optional_str(contains.get("system"), f"{contains_location}.system")
            _add_ordinal(table, system, contains, contains_location)
        tables[f"#{resource['id']}"] = table
    return tables


def _ordinal_table(item: Mapping[str, Any], value_sets: Mapping[str, dict[str, int]], location: str) -> dict[str, int]:
    table: dict[str, int] = {}
    for index, raw in enumerate(as_list(item.get("answerOption"), f"{location}.answerOption")):
        option_location = f"{location}.answerOption[{index}]"
        option = as_object(raw, option_location)
        if "valueCoding" not in option:
            continue
        coding = as_object(option["valueCoding"], f"{option_location}.valueCoding")
        system = optional_str(coding.get("system"), f"{option_location}.valueCoding.system")
        _add_ordinal(table, system, {**coding, "extension": option.get("extension")}, option_location)
    reference = optional_str(item.get("answerValueSet"), f"{location}.answerValueSet")
    if reference is not None:
        if reference not in value_sets:
            # A ValueSet we cannot see: codes are then matched against the instrument's own options.
            return table
        table.update(value_sets[reference])
    return table


def _add_ordinal(table: dict[str, int], system: str | None, element: Mapping[str, Any], location: str) -> None:
    code = required_str(element.get("code"), f"{location}.code")
    for url in (ORDINAL_VALUE_URL, ITEM_WEIGHT_URL):
        for ext_location, extension in extensions(element, url, location):
            raw = extension.get("valueDecimal", extension.get("valueInteger"))
            value = float(number(raw, f"{ext_location}.value"))
            if not value.is_integer():
                raise MappingError(
                    ext_location, f"ordinal {value:g} of code {code!r} is not a whole number", code="value"
                )
            table[coding_key(system, code)] = int(value)
            return


def _check_ordinals(instrument: Instrument, target: str, table: Mapping[str, int], location: str) -> None:
    """Their ordinals must be scores our item can take, else their total and ours would silently differ."""
    item = instrument.item(target)
    if item is None or not item.scored:
        return
    foreign = sorted({value for value in table.values() if value not in item.scores})
    if foreign:
        raise MappingError(
            location,
            f"ordinals {foreign} are not scores of {instrument.title} item {target!r} ({sorted(item.scores)})",
            code="value",
        )


def _check_expression_evaluates(external: ExternalQuestionnaire) -> None:
    """Fail at registration, not at every intake, when the calculatedExpression cannot be evaluated."""
    empty = {"resourceType": "QuestionnaireResponse", "status": "in-progress", "item": []}
    calculated_total(external, empty)
