"""The one place the FHIR release is chosen: fhir.resources R4B models, written as R4 4.0.1 JSON.

R4B's models accept and emit R4 JSON for every resource we map (README.md, "R4 and R4B"), so we build with
them and serialise to plain JSON; nothing R4B-only (CodeableReference, R4B-only value[x] types) is emitted.
"""

from __future__ import annotations

import json
import os
import weakref
from typing import Any, Final, TypeVar, cast

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.address import Address
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.goal import Goal
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient, PatientCommunication, PatientContact
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.structuredefinition import StructureDefinition

# What we write on the wire and in StructureDefinition.fhirVersion (R4 technical correction 4.0.1).
FHIR_VERSION: Final = "4.0.1"

Resource = FHIRResourceModel
M = TypeVar("M", bound=FHIRResourceModel)

_MODELS: Final[dict[str, type[FHIRResourceModel]]] = {
    model.__name__: model
    for model in (
        Appointment,
        CarePlan,
        CodeSystem,
        Communication,
        Condition,
        DocumentReference,
        Encounter,
        Flag,
        Goal,
        MedicationAdministration,
        Observation,
        OperationOutcome,
        Patient,
        Procedure,
        Questionnaire,
        QuestionnaireResponse,
        ServiceRequest,
        StructureDefinition,
    )
}


# The JSON each built model was made from, by id(model) while the model lives (see to_json).
_VALIDATED_FROM: dict[int, dict[str, Any]] = {}


class CanonicalJsonMismatch(AssertionError):
    """to_json's fast path differs from fhir.resources' own serialiser (raised only in the check mode)."""


# What Tandem's own mappers build is not validated again on the request path: they are pure and property-tested
# (tests/fhir_mappings/test_outbound_valid.py maps hundreds of generated records through each), and validating every
# outbound resource was about a seventh of a write (issue #18). The check mode validates each mapper output with
# fhir.resources and compares to_json's fast JSON with fhir.resources' own serialiser, failing on any difference; the
# suite switches it on (tests/conftest.py sets the variable, so the servers it starts inherit it) and so does CI, so
# a mapper bug fails the build, not an EHR's request.
check_mappers = os.environ.get("TANDEM_CHECK_MAPPERS") == "1"


def build(model: type[M], data: dict[str, Any]) -> M:
    """The model of a resource dict a mapper wrote. Validated against its R4B model in the check mode; otherwise
    an empty shell that to_json answers from `data` (reading an element of it fails loudly: nothing was set)."""
    if data.get("resourceType") != model.__name__:
        raise ValueError(f"a {data.get('resourceType')} is not a {model.__name__}")
    resource = model.model_validate(data) if check_mappers else model.__new__(model)
    key = id(resource)
    _VALIDATED_FROM[key] = data
    weakref.finalize(resource, _VALIDATED_FROM.pop, key, None)
    return resource


def model_for(resource_type: str) -> type[FHIRResourceModel]:
    return _MODELS[resource_type]


def any_model_for(resource_type: str) -> type[FHIRResourceModel]:
    """Any R4 resource type's model (Bundle, OperationOutcome, …), for wire formats; KeyError if unknown."""
    model = get_fhir_model_class(resource_type)
    return cast(type[FHIRResourceModel], model)


def to_json(resource: FHIRResourceModel) -> dict[str, Any]:
    """The R4 JSON of a model: aliases, no nulls, FHIR primitive formats.

    A model made by build() is not serialised again: fhir.resources' serialiser walks every element of every
    nested model in Python and costs about twice the validation (~0.5 ms a resource; bench/notes.md, change 10),
    and our mappings already write R4 JSON (aliases, instants in UTC with Z: identity.instant). What build()
    validated is returned, copied, without nulls and empty elements, as the serialiser would write it.
    """
    source = _VALIDATED_FROM.get(id(resource))
    if source is None:
        result: dict[str, Any] = json.loads(resource.model_dump_json())
        return result
    fast = _without_empty(source)
    if check_mappers:
        # As JSON text, keys sorted: Python's == would take 1 for true and 1 for 1.0.
        built, serialised = (json.dumps(v, sort_keys=True) for v in (fast, json.loads(resource.model_dump_json())))
        if built != serialised:
            raise CanonicalJsonMismatch(f"{resource.__class__.__name__}: built {built}, serialised {serialised}")
    return cast(dict[str, Any], fast)


def _without_empty(value: Any) -> Any:
    """A copy of JSON without nulls, empty lists and empty objects (FHIR elements are never empty)."""
    if isinstance(value, dict):
        kept = {}
        for name, item in value.items():
            item = _without_empty(item)
            if item is not None and item != [] and item != {}:
                kept[name] = item
        return kept
    if isinstance(value, list):
        return [_without_empty(item) for item in value]
    return value


__all__ = [
    "FHIR_VERSION",
    "Address",
    "Appointment",
    "CarePlan",
    "CodeSystem",
    "Communication",
    "Condition",
    "ContactPoint",
    "DocumentReference",
    "Encounter",
    "Flag",
    "Goal",
    "HumanName",
    "MedicationAdministration",
    "Observation",
    "OperationOutcome",
    "Patient",
    "PatientCommunication",
    "PatientContact",
    "Procedure",
    "Questionnaire",
    "QuestionnaireResponse",
    "Resource",
    "ServiceRequest",
    "StructureDefinition",
    "any_model_for",
    "build",
    "model_for",
    "to_json",
]
