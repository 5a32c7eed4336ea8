"""Every search parameter the CapabilityStatement declares is R4's, or ours with a published SearchParameter.

R4's registry is the specification's own SearchParameter resources, read from the official examples package
(tests/r4_examples.py); a declared parameter that is neither, or one we define while R4 has it, fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.searchparameter import SearchParameter

from service.projection.writes import _tokens
from tests.fhir.support import fhir_headers
from tests.r4_examples import r4_examples

# Parameters every resource has (base Resource / DomainResource in R4).
EVERY_RESOURCE = ("Resource", "DomainResource")


def _registry() -> dict[tuple[str, str], dict[str, Any]]:
    """(base type, code) -> R4's definition."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for definition in r4_examples("SearchParameter").values():
        for base in definition.get("base", []):
            found[(base, definition["code"])] = definition
    return found


def _r4(registry: dict[tuple[str, str], dict[str, Any]], resource_type: str, name: str) -> dict[str, Any] | None:
    for base in (resource_type, *EVERY_RESOURCE):
        if (base, name) in registry:
            return registry[(base, name)]
    return None


@pytest.fixture
def headers(tenant: str, auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return fhir_headers(auth(tenant, "clinician"))


def test_every_declared_parameter_is_r4s_or_has_our_definition(client: TestClient, headers: dict[str, str]) -> None:
    registry = _registry()
    assert len(registry) > 1000, "the R4 registry was not read"
    statement = client.get("/fhir/metadata").json()
    ours = 0
    for declared in statement["rest"][0]["resource"]:
        resource_type = declared["type"]
        for param in declared.get("searchParam", []):
            standard = _r4(registry, resource_type, param["name"])
            if standard is not None:
                assert "definition" not in param, f"{resource_type}.{param['name']} is R4's: not ours to redefine"
                assert standard["type"] == param["type"], (resource_type, param, standard["type"])
                continue
            assert "definition" in param, (
                f"{resource_type}?{param['name']} is not an R4 parameter and has no definition"
            )
            found = client.get("/fhir/SearchParameter", params={"url": param["definition"]}, headers=headers).json()
            assert found["total"] == 1, (param, found)
            definition = found["entry"][0]["resource"]
            SearchParameter.model_validate(definition)  # a valid R4 SearchParameter
            assert (definition["code"], definition["type"]) == (param["name"], param["type"])
            assert resource_type in definition["base"]
            if "derivedFrom" in definition:
                derived = definition["derivedFrom"]
                assert any(d["url"] == derived for d in registry.values()), f"{derived} is not an R4 parameter"
            read = client.get(f"/fhir/SearchParameter/{definition['id']}", headers=headers)
            assert read.status_code == 200 and read.json() == definition
            ours += 1
    assert ours > 0


def test_parameters_a_type_has_no_element_for_are_refused_not_silently_empty(
    client: TestClient, headers: dict[str, str]
) -> None:
    # Declared before, they could never match: Patient has no status, Encounter no code, Goal no status.
    for resource_type, name in (("Patient", "status"), ("Encounter", "code"), ("Goal", "status")):
        response = client.get(f"/fhir/{resource_type}", params={name: "active"}, headers=headers)
        assert response.status_code == 400, (resource_type, name, response.text)
        assert response.json()["issue"][0]["code"] == "not-supported"


def test_an_unknown_search_parameter_definition_is_404(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/fhir/SearchParameter/Patient-nickname", headers=headers)
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_single_category_is_indexed_like_a_list() -> None:
    # Procedure.category is one CodeableConcept in R4, Observation.category a list: both are searchable.
    concept = {"coding": [{"system": "http://snomed.info/sct", "code": "24642003"}]}
    single = list(_tokens({"resourceType": "Procedure", "category": concept}))
    listed = list(_tokens({"resourceType": "Observation", "category": [concept]}))
    assert single == listed == [("category", "http://snomed.info/sct", "24642003")]
