"""Issue #16, finding 5: a search parameter, modifier or chain the server does not support is refused (400
OperationOutcome, issue code not-supported, naming the parameter) — never dropped, which widened the result to
the whole tenant. Lenient handling too: R4 says a server SHALL reject a modifier it does not support."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from service.fhir.types import FHIR_TYPES
from tests.builders import ApiDriver, questionnaire_body
from tests.fhir.support import fhir_headers

LENIENT = {"Prefer": "handling=lenient"}
STRICT = {"Prefer": "handling=strict"}
# Each of these was silently dropped on main, so the search answered with every resource of the type.
UNSUPPORTED = [
    ("QuestionnaireResponse", "subject:identifier", "urn:oid:1|MRN-1"),
    ("QuestionnaireResponse", "subject:Practitioner", "p1"),
    ("QuestionnaireResponse", "subject.identifier", "urn:oid:1|MRN-1"),
    ("Observation", "patient.identifier", "urn:oid:1|MRN-1"),
    ("Observation", "patient.name", "Okonkwo"),
    ("Observation", "code:text", "blood pressure"),
    ("Observation", "code:not", "8480-6"),
    ("Observation", "date:missing", "true"),
    ("Observation", "identifier:of-type", "x|MR|1"),
    ("QuestionnaireResponse", "status:exact", "completed"),
    ("Patient", "_has:Observation:patient:code", "8480-6"),
    ("Patient", "name:phonetic", "Okonkwo"),  # name is served (issue #21); :phonetic is not
    ("Patient", "shoe-size", "44"),
    ("Patient", "_count:foo", "1"),
]


@pytest.fixture
def world(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> dict[str, Any]:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    mine, other = api.patient(), api.patient()
    responses = {pid: api.create("questionnaire-responses", questionnaire_body(pid))["id"] for pid in (mine, other)}
    return {"headers": fhir_headers(auth(tenant, "ehr-system")), "mine": mine, "other": other, "qr": responses}


def _ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


def _assert_refused(response: Any, parameter: str) -> None:
    assert response.status_code == 400, (parameter, response.status_code, response.text[:300])
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["code"] == "not-supported", issue
    assert parameter in issue["diagnostics"] and issue["expression"] == [parameter], issue


@pytest.mark.parametrize("prefer", [LENIENT, STRICT, {}], ids=["lenient", "strict", "no-prefer"])
@pytest.mark.parametrize(("resource_type", "parameter", "value"), UNSUPPORTED)
def test_unsupported_modifiers_and_chains_are_refused(
    client: TestClient, world: dict[str, Any], prefer: dict[str, str], resource_type: str, parameter: str, value: str
) -> None:
    response = client.get(f"/fhir/{resource_type}", params={parameter: value}, headers={**world["headers"], **prefer})
    _assert_refused(response, parameter)


def test_refused_by_post_search_and_in_batch_entries(client: TestClient, world: dict[str, Any]) -> None:
    headers = {**world["headers"], **LENIENT}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    posted = client.post(
        "/fhir/QuestionnaireResponse/_search",
        content=urlencode({"subject:identifier": "x|y"}),
        headers={**headers, **form},
    )
    _assert_refused(posted, "subject:identifier")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Observation?patient.identifier=urn:oid:1|MRN-1"}},
            {"request": {"method": "GET", "url": f"QuestionnaireResponse?subject:Patient={world['mine']}"}},
        ],
    }
    answer = client.post("/fhir", json=bundle, headers=headers)
    assert answer.status_code == 200, answer.text
    refused, allowed = answer.json()["entry"]
    assert refused["response"]["status"] == "400"
    assert refused["response"]["outcome"]["issue"][0]["code"] == "not-supported"
    assert "patient.identifier" in refused["response"]["outcome"]["issue"][0]["diagnostics"]
    assert _ids(allowed["resource"]) == {world["qr"][world["mine"]]}


def test_if_none_exist_with_an_unsupported_modifier_is_refused(client: TestClient, world: dict[str, Any]) -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "X"}], "gender": "male", "birthDate": "1990-01-01"}
    response = client.post(
        "/fhir/Patient", json=patient, headers={**world["headers"], "If-None-Exist": "identifier:text=anything"}
    )
    _assert_refused(response, "identifier:text")


@pytest.mark.parametrize("value", ["{mine}", "Patient/{mine}"])
def test_the_type_modifier_naming_patient_narrows_to_that_patient(
    client: TestClient, world: dict[str, Any], value: str
) -> None:
    wanted = value.format(mine=world["mine"])
    for parameter in ("subject:Patient", "patient:Patient", "subject"):
        response = client.get(
            "/fhir/QuestionnaireResponse", params={parameter: wanted}, headers={**world["headers"], **LENIENT}
        )
        assert response.status_code == 200, response.text
        assert _ids(response.json()) == {world["qr"][world["mine"]]}, parameter


def test_the_capability_statement_lists_exactly_the_table(client: TestClient, world: dict[str, Any]) -> None:
    """Declared = served: each declared parameter runs (strict), the table covers every served type, and a
    name outside the declaration is refused."""
    from service.fhir.search_parameters import SEARCH_PARAMETERS

    assert set(FHIR_TYPES) <= set(SEARCH_PARAMETERS)
    statement = client.get("/fhir/metadata").json()
    for declared in statement["rest"][0]["resource"]:
        resource_type = declared["type"]
        names = {p["name"] for p in declared["searchParam"]}
        assert names == set(SEARCH_PARAMETERS[resource_type]), resource_type
        for param in declared["searchParam"]:
            assert param["type"] == SEARCH_PARAMETERS[resource_type][param["name"]].type
        if resource_type == "AuditEvent":
            continue
        refused = client.get(f"/fhir/{resource_type}", params={"not-declared": "1"}, headers=world["headers"])
        _assert_refused(refused, "not-declared")
