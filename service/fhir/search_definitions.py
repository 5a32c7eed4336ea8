"""SearchParameter resources for the search parameters Tandem serves that R4's registry does not define.

A strict client checks each parameter a CapabilityStatement declares against its definition; for R4's own the
definition is the specification's, for these it is ours: published at /fhir/SearchParameter/{id} and referenced
from the CapabilityStatement's searchParam.definition. Most are aliases a client expects by analogy (`date` on a
QuestionnaireResponse is its `authored`), derived from the R4 parameter they stand for; Flag's are its own
elements, which R4 does not make searchable. tests/fhir/test_search_definitions.py checks the list against the
R4 registry (hl7.fhir.r4.examples' Bundle-searchParams.json): every declared parameter is R4's or defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.fhir.search_parameters import SEARCH_PARAMETERS

_R4 = "http://hl7.org/fhir/SearchParameter"
# The day these definitions were last changed (SearchParameter.date): a client may cache them by it.
PUBLISHED = "2026-12-04"


@dataclass(frozen=True)
class CustomParameter:
    expression: str  # FHIRPath, as R4's definitions give it
    description: str
    derived_from: str | None = None  # the R4 parameter this one is an alias of


CUSTOM_PARAMETERS: dict[tuple[str, str], CustomParameter] = {
    ("MedicationAdministration", "date"): CustomParameter(
        "MedicationAdministration.effective",
        "When the dose was given: the same as effective-time",
        f"{_R4}/MedicationAdministration-effective-time",
    ),
    ("QuestionnaireResponse", "date"): CustomParameter(
        "QuestionnaireResponse.authored",
        "When the answers were given: the same as authored",
        f"{_R4}/QuestionnaireResponse-authored",
    ),
    ("Observation", "effective"): CustomParameter(
        "Observation.effective", "When the observation was made: the same as date", f"{_R4}/clinical-date"
    ),
    ("Appointment", "subject"): CustomParameter(
        "Appointment.participant.actor.where(resolve() is Patient)",
        "The patient the appointment is for: the same as patient",
        f"{_R4}/Appointment-patient",
    ),
    ("Flag", "status"): CustomParameter("Flag.status", "Whether the flag is active, inactive or entered in error"),
    ("Flag", "code"): CustomParameter("Flag.code", "What the flag says: the plan-status reason's code"),
    ("Flag", "category"): CustomParameter("Flag.category", "The flag's category (clinical, safety, …)"),
}


def definition_id(resource_type: str, name: str) -> str:
    return f"{resource_type}-{name}"


def definition_url(canonical_base: str, resource_type: str, name: str) -> str:
    return f"{canonical_base.rstrip('/')}/SearchParameter/{definition_id(resource_type, name)}"


def search_definitions(canonical_base: str) -> list[dict[str, Any]]:
    """Our SearchParameter resources, one per custom parameter the search table serves."""
    published = []
    for (resource_type, name), custom in CUSTOM_PARAMETERS.items():
        served = SEARCH_PARAMETERS[resource_type][name]
        definition: dict[str, Any] = {
            "resourceType": "SearchParameter",
            "id": definition_id(resource_type, name),
            "url": definition_url(canonical_base, resource_type, name),
            "name": f"{resource_type}{name.capitalize()}",
            "status": "active",
            "experimental": False,
            "date": PUBLISHED,
            "publisher": "Tandem",
            "description": custom.description,
            "code": name,
            "base": [resource_type],
            "type": served.type,
            "expression": custom.expression,
        }
        if custom.derived_from is not None:
            definition["derivedFrom"] = custom.derived_from
        if served.type == "reference":
            definition["target"] = ["Patient"]
            definition["modifier"] = ["type"]
        published.append(definition)
    return published
