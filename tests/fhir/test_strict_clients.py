"""What strict FHIR clients (fhirpy, fhirclient) trip on: counting with `_count=0`, version-aware updates, public
SMART discovery, and history of a whole type said to be unsupported rather than "no Patient with id '_history'"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings
from tests.fhir.support import fhir_headers, patient_resource


@pytest.fixture
def headers(tenant: str, auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return fhir_headers(auth(tenant, "ehr-system"))


def _patients(client: TestClient, headers: dict[str, str], n: int) -> list[dict[str, Any]]:
    created = [client.post("/fhir/Patient", json=patient_resource(), headers=headers) for _ in range(n)]
    assert all(r.status_code == 201 for r in created), [r.text for r in created]
    return [r.json() for r in created]


def _relations(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


@pytest.mark.parametrize("narrowed", [False, True], ids=["all-patients", "by-identifier"])
def test_count_zero_answers_the_total_and_no_next_link(
    client: TestClient, headers: dict[str, str], narrowed: bool
) -> None:
    patients = _patients(client, headers, 3)
    # Both search plans: the general one, and the token index's (one identifier parameter).
    params = {"_count": "0"}
    if narrowed:
        params["identifier"] = ",".join(p["identifier"][0]["value"] for p in patients[:2])
    bundle = client.get("/fhir/Patient", params=params, headers=headers).json()
    assert bundle["total"] == (2 if narrowed else 3)
    assert "entry" not in bundle or bundle["entry"] == []
    assert set(_relations(bundle)) == {"self"}, "a next link equal to self loops a paging client forever"


def test_count_zero_with_fhirpy_total_method_is_r4_total(client: TestClient, headers: dict[str, str]) -> None:
    _patients(client, headers, 2)
    counted = client.get("/fhir/Patient", params={"_count": "0", "_totalMethod": "count"}, headers=headers)
    assert counted.status_code == 200, counted.text
    assert counted.json()["total"] == 2
    wrong = client.get("/fhir/Patient", params={"_totalMethod": "exact"}, headers=headers)
    assert wrong.status_code == 400
    assert wrong.json()["issue"][0]["expression"] == ["_totalMethod"]


def test_update_without_if_match_is_428_and_changes_nothing(client: TestClient, headers: dict[str, str]) -> None:
    (patient,) = _patients(client, headers, 1)
    stale = {**patient, "gender": "male"}
    refused = client.put(f"/fhir/Patient/{patient['id']}", json=stale, headers=headers)
    assert refused.status_code == 428, refused.text
    issue = refused.json()["issue"][0]
    assert (issue["code"], "If-Match" in issue["diagnostics"]) == ("required", True)
    read = client.get(f"/fhir/Patient/{patient['id']}", headers=headers).json()
    assert (read["meta"]["versionId"], read["gender"]) == ("1", "female")
    accepted = client.put(f"/fhir/Patient/{patient['id']}", json=stale, headers={**headers, "If-Match": 'W/"1"'})
    assert accepted.status_code == 200, accepted.text


def test_bundle_put_entries_need_if_match_too(client: TestClient, headers: dict[str, str]) -> None:
    (patient,) = _patients(client, headers, 1)
    renamed = {**patient, "name": [{"family": "Renamed"}]}
    entry: dict[str, Any] = {"resource": renamed, "request": {"method": "PUT", "url": f"Patient/{patient['id']}"}}
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
    answered = client.post("/fhir", json=batch, headers=headers).json()
    assert answered["entry"][0]["response"]["status"].startswith("428")
    transaction = {**batch, "type": "transaction"}
    refused = client.post("/fhir", json=transaction, headers=headers)
    assert refused.status_code == 428, refused.text
    assert client.get(f"/fhir/Patient/{patient['id']}", headers=headers).json()["meta"]["versionId"] == "1"
    entry["request"]["ifMatch"] = 'W/"1"'
    done = client.post("/fhir", json=transaction, headers=headers)
    assert done.status_code == 200, done.text
    assert client.get(f"/fhir/Patient/{patient['id']}", headers=headers).json()["name"][0]["family"] == "Renamed"


def test_capability_statement_says_updates_are_version_aware(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    declared = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert declared["Patient"]["versioning"] == "versioned-update"
    assert "If-Match" in statement["rest"][0]["documentation"]
    create_only = [r for r in declared.values() if {"code": "create"} in r["interaction"]]
    create_only = [r for r in create_only if {"code": "update"} not in r["interaction"]]
    create_only = [r for r in create_only if {"code": "vread"} in r["interaction"]]  # not Subscription: no-version
    assert create_only and all(r["versioning"] == "versioned" for r in create_only)


def test_smart_discovery_is_public_and_says_what_to_configure(client: TestClient) -> None:
    response = client.get("/fhir/.well-known/smart-configuration")  # no token
    assert response.status_code == 404, response.text
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "TANDEM_SMART_TOKEN_ENDPOINT" in diagnostics


def test_smart_discovery_names_the_hospital_authorization_server(database_url: str) -> None:
    settings = make_settings(
        database_url,
        smart_token_endpoint="https://idp.hospital.example/oauth2/token",
        smart_authorization_endpoint="https://idp.hospital.example/oauth2/authorize",
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    # SMART App Launch 2.0 conformance: the required fields, and S256 only (never plain).
    assert document["token_endpoint"] == "https://idp.hospital.example/oauth2/token"
    assert document["authorization_endpoint"] == "https://idp.hospital.example/oauth2/authorize"
    assert {"authorization_code", "client_credentials"} == set(document["grant_types_supported"])
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "permission-v2" in document["capabilities"]


@pytest.mark.parametrize("path", ["/fhir/Patient/_history", "/fhir/_history"])
def test_history_of_a_whole_type_or_server_is_said_to_be_unsupported(
    client: TestClient, headers: dict[str, str], path: str
) -> None:
    assert client.get(path).status_code == 401
    response = client.get(path, headers=headers)
    assert response.status_code == 501, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "not-supported"
    assert "/<id>/_history" in issue["diagnostics"] and "_lastUpdated" in issue["diagnostics"]
    statement = client.get("/fhir/metadata").json()
    codes = {i["code"] for r in statement["rest"][0]["resource"] for i in r["interaction"]}
    assert not codes & {"history-type", "history-system"}
