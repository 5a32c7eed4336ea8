"""Evaluating a registered Questionnaire's own FHIRPath total (SDC calculatedExpression) on a response.

Used to cross-check our ordinal sum against what the form itself would compute. The SDC functions
answers(), ordinal() and weight() (SDC 3.0 "Expressions": http://hl7.org/fhir/uv/sdc/expressions.html)
are supplied through fhirpathpy's userInvocationTable, resolving ordinals from the Questionnaire.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from fhir_mappings.errors import MappingError
from fhir_mappings.reading import as_list, as_object
from fhir_mappings.reading import located_extensions as extensions

from .codes import CALCULATED_EXPRESSION_URL, VARIABLE_URL, lookup_coding
from .external_questionnaire import ExternalQuestionnaire

_FHIRPATH = "text/fhirpath"
# Choice elements such as answer.value resolve only with the R4 model.
_R4_MODEL: dict[str, Any] = models["r4"]


def calculated_total(external: ExternalQuestionnaire, response: Mapping[str, Any]) -> float | None:
    """The total the Questionnaire's calculatedExpression yields; None when it has no FHIRPath total."""
    located = _total_item_path(external)
    if located is None:
        return None
    path, location = located
    expression = _fhirpath_expression(path[-1], CALCULATED_EXPRESSION_URL, location)
    if expression is None:
        return None
    questionnaire = copy.deepcopy(external.questionnaire)
    resource = copy.deepcopy(dict(response))
    variables: dict[str, Any] = {"resource": resource, "questionnaire": questionnaire}
    table = _invocation_table(_merged_ordinals(external))
    # SDC variables are in scope on the element that declares them and its descendants.
    for element, element_location in zip((external.questionnaire, *path), _locations(location), strict=True):
        for ext_location, extension in extensions(element, VARIABLE_URL, element_location):
            value = as_object(extension.get("valueExpression"), f"{ext_location}.valueExpression")
            if value.get("language") == _FHIRPATH and isinstance(value.get("name"), str):
                variables[value["name"]] = _evaluate(
                    resource, str(value.get("expression")), variables, table, ext_location
                )
    result = _evaluate(resource, expression, variables, table, location)
    if not result:
        return None
    if len(result) != 1 or isinstance(result[0], bool) or not isinstance(result[0], int | float):
        raise MappingError(location, f"calculatedExpression returned {result!r}, not a single number", code="value")
    return float(result[0])


def _evaluate(
    resource: dict[str, Any],
    expression: str,
    variables: Mapping[str, Any],
    table: dict[str, Any],
    location: str,
) -> list[Any]:
    try:
        result = fhirpathpy.evaluate(
            resource, expression, dict(variables), model=_R4_MODEL, options={"userInvocationTable": table}
        )
    except Exception as error:  # fhirpathpy raises bare Exception for unsupported functions
        raise MappingError(
            location, f"cannot evaluate FHIRPath {expression!r}: {error}", code="not-supported"
        ) from error
    return list(result)


def _total_item_path(external: ExternalQuestionnaire) -> tuple[list[Mapping[str, Any]], str] | None:
    """Chain of items from the root to the total item, and the total item's location."""
    if external.total_link_id is None:
        return None

    def search(container: Mapping[str, Any], location: str) -> tuple[list[Mapping[str, Any]], str] | None:
        for index, raw in enumerate(as_list(container.get("item"), f"{location}.item")):
            item_location = f"{location}.item[{index}]"
            item = as_object(raw, item_location)
            if item.get("linkId") == external.total_link_id:
                return [item], item_location
            found = search(item, item_location)
            if found is not None:
                return [item, *found[0]], found[1]
        return None

    return search(external.questionnaire, "Questionnaire")


def _locations(location: str) -> list[str]:
    """ "Questionnaire.item[1].item[2]" -> ["Questionnaire", "Questionnaire.item[1]", "...item[2]"]."""
    parts = location.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _fhirpath_expression(item: Mapping[str, Any], url: str, location: str) -> str | None:
    for ext_location, extension in extensions(item, url, location):
        value = as_object(extension.get("valueExpression"), f"{ext_location}.valueExpression")
        if value.get("language") == _FHIRPATH and isinstance(value.get("expression"), str):
            return str(value["expression"])
    return None


def _merged_ordinals(external: ExternalQuestionnaire) -> dict[str, int | None]:
    """One code -> ordinal table for ordinal(), which sees a Coding but not its item; conflicts -> None."""
    merged: dict[str, int | None] = {}
    for table in external.ordinals.values():
        for key, value in table.items():
            merged[key] = value if merged.get(key, value) == value else None
    return merged


def _invocation_table(ordinals: Mapping[str, int | None]) -> dict[str, Any]:
    def answers(inputs: list[Any]) -> list[ResourceNode]:
        found: list[ResourceNode] = []

        def walk(items: Any) -> None:
            for item in items or []:
                for answer in item.get("answer", []):
                    # Typed as an answer node so that .value resolves to value[x] with the R4 model.
                    node = ResourceNode.create_node(answer, "QuestionnaireResponse.item.answer")  # type: ignore[no-untyped-call]
                    found.append(node)
                    walk(answer.get("item"))
                walk(item.get("item"))

        for resource in inputs:
            if isinstance(resource, Mapping):
                walk(resource.get("item"))
        return found

    def ordinal(inputs: list[Any]) -> list[int]:
        values = []
        for coding in inputs:
            if not isinstance(coding, Mapping) or not isinstance(coding.get("code"), str):
                continue
            known = {k: v for k, v in ordinals.items() if v is not None}
            value = lookup_coding(known, coding.get("system"), coding["code"])
            if value is None:
                raise ValueError(f"no ordinal for code {coding['code']!r}")
            values.append(value)
        return values

    return {"answers": _zero_args(answers), "ordinal": _zero_args(ordinal), "weight": _zero_args(ordinal)}


def _zero_args(fn: Callable[[list[Any]], list[Any]]) -> dict[str, Any]:
    return {"fn": fn, "arity": {0: []}}
