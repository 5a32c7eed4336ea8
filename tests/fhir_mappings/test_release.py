"""R4B models vs R4: no element of the resources we map exists in R4B but not in R4 (fhirkit knows R4 4.0.1)."""

from __future__ import annotations

import typing
from typing import Any

import fhirkit
from pydantic import BaseModel

from fhir_mappings.release import FHIR_VERSION, model_for

OUR_TYPES = (
    "Patient", "CarePlan", "Goal", "Condition", "MedicationAdministration", "Observation", "Encounter",
    "Procedure", "QuestionnaireResponse", "Questionnaire", "Flag", "StructureDefinition", "CodeSystem",
    "Communication", "DocumentReference",
    "OperationOutcome",
)  # fmt: skip
_SKIP = {"resource_type", "fhir_comments", "extension", "modifierExtension", "id", "contained", "text", "meta"}


def _backbone(annotation: Any) -> type[BaseModel] | None:
    for arg in typing.get_args(annotation) or (annotation,):
        inner = _backbone(arg) if typing.get_args(arg) else arg
        if isinstance(inner, type) and any(c.__name__ == "BackboneElement" for c in inner.__mro__):
            return inner
    return None


def _unknown_elements(model: type[BaseModel], path: str, wrap: Any, depth: int = 0) -> list[str]:
    found: list[str] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if alias in _SKIP or alias.startswith("_"):
            continue
        issues = fhirkit.validate(wrap({alias: {}}))
        if any("unknown element" in i.message and i.path.endswith(alias) for i in issues):
            found.append(f"{path}.{alias}")
            continue
        inner = _backbone(field.annotation)
        if inner is not None and depth < 3:
            found += _unknown_elements(inner, f"{path}.{alias}", lambda v, a=alias, w=wrap: w({a: v}), depth + 1)
    return found


def test_fhirkit_is_r4_401() -> None:
    assert fhirkit.FHIR_VERSION == FHIR_VERSION == "4.0.1"


def test_no_r4b_only_elements_in_our_resources() -> None:
    unknown = [
        element
        for resource_type in OUR_TYPES
        for element in _unknown_elements(
            model_for(resource_type), resource_type, lambda v, t=resource_type: {"resourceType": t, **v}
        )
    ]
    assert unknown == []
