"""What the facade promises: atomic transactions, one resource from concurrent conditional creates, valid R4
everywhere, tenant isolation on every read path, scopes, and a CapabilityStatement that tells the truth."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fhirkit
import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import Engine

from service.auth.tokens import mint_dev_token
from service.settings import Settings
from tests.db_snapshot import database_checksum
from tests.fhir.support import about, fhir_headers, patient_resource
from tests.fhir.test_facade_conformance import _phq9_response
from tests.live_server import serve
from tests.shared_fixtures import load_fixture

US_CORE_QR = "fhir/uscore7-QuestionnaireResponse-phq-9-example.json"


@pytest.fixture
def headers(tenant: str, auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return fhir_headers(auth(tenant, "ehr-system"))


def _patient(client: TestClient, headers: dict[str, str], **overrides: Any) -> str:
    response = client.post("/fhir/Patient", json=patient_resource(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_transaction_with_one_bad_entry_changes_nothing(
    client: TestClient, engine: Engine, headers: dict[str, str]
) -> None:
    bad_answer = _phq9_response("urn:uuid:0b8e0d7c-1111-4c9e-8f7a-000000000001")
    bad_answer["item"][4]["answer"] = [{"valueCoding": {"system": "http://loinc.org", "code": "LA9999-9"}}]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b8e0d7c-1111-4c9e-8f7a-000000000001",
                "resource": patient_resource(name=[{"family": "Atomic"}]),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": _phq9_response("urn:uuid:0b8e0d7c-1111-4c9e-8f7a-000000000001"),
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
            {"resource": bad_answer, "request": {"method": "POST", "url": "QuestionnaireResponse"}},
        ],
    }
    before = database_checksum(engine, exclude={"audit_events"})
    response = client.post("/fhir", content=json.dumps(bundle), headers=headers)
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[2]" in json.dumps(outcome)
    assert database_checksum(engine, exclude={"audit_events"}) == before


def test_a_batch_runs_each_entry_on_its_own(client: TestClient, headers: dict[str, str]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": patient_resource(name=[{"family": "Batched"}]),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "gender": "female"},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    response = client.post("/fhir", content=json.dumps(bundle), headers=headers).json()
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["201", "422"]
    assert response["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_bundle_size_is_bounded(client: TestClient, headers: dict[str, str]) -> None:
    limit = client.app.state.settings.max_bundle_entries  # type: ignore[attr-defined]
    entries = [{"request": {"method": "GET", "url": "Patient"}}] * (limit + 1)
    response = client.post(
        "/fhir", content=json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}), headers=headers
    )
    assert response.status_code == 422
    assert f"at most {limit}" in response.text


def test_32_concurrent_conditional_creates_make_one_resource(
    client: TestClient, settings: Settings, tenant: str
) -> None:
    token = mint_dev_token(settings, tenant=tenant, role="ehr-system")
    resource = patient_resource()
    mrn = resource["identifier"][0]
    criteria = f"identifier={mrn['system']}|{mrn['value']}"
    barrier = threading.Barrier(32)
    with serve(client.app) as base_url:  # type: ignore[arg-type]

        def send(_: int) -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=60) as http:
                barrier.wait()
                return http.post(
                    "/fhir/Patient",
                    content=json.dumps(resource),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/fhir+json",
                        "If-None-Exist": criteria,
                    },
                )

        with ThreadPoolExecutor(32) as pool:
            responses = list(pool.map(send, range(32)))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses if r.status_code >= 300]
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert len({r.json()["id"] for r in responses}) == 1
    found = client.get(
        "/fhir/Patient",
        params={"identifier": f"{mrn['system']}|{mrn['value']}"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert found["total"] == 1


def _valid_everywhere(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    errors = [str(i) for i in fhirkit.validate(resource) if i.severity == "error"]
    assert errors == [], (resource["resourceType"], errors)


def test_every_resource_the_facade_returns_is_valid_r4(client: TestClient, headers: dict[str, str]) -> None:
    patient_id = _patient(client, headers)
    assert (
        client.post(
            "/fhir/QuestionnaireResponse", json=about(load_fixture(US_CORE_QR), patient_id), headers=headers
        ).status_code
        == 201
    )
    administration = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130"}]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectivePeriod": {"start": "2026-10-07T09:00:00Z", "end": "2026-10-07T09:40:00Z"},
        "dosage": {
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
            "dose": {"value": 35, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
        },
    }
    created = client.post("/fhir/MedicationAdministration", json=administration, headers=headers)
    assert created.status_code == 201, created.text
    checked = 0
    for resource_type in (
        "Patient",
        "QuestionnaireResponse",
        "Observation",
        "MedicationAdministration",
        "CarePlan",
        "Questionnaire",
    ):
        bundle = client.get(f"/fhir/{resource_type}", params={"_count": 100}, headers=headers).json()
        _valid_everywhere(bundle)
        for entry in bundle.get("entry", []):
            _valid_everywhere(entry["resource"])
            checked += 1
    _valid_everywhere(client.get("/fhir/metadata").json())
    assert checked >= 5


def test_the_capability_statement_declares_exactly_what_works(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    statement = client.get("/fhir/metadata").json()
    admin = fhir_headers(auth(tenant, "admin"))
    patient_id = _patient(client, headers)
    qr = client.post("/fhir/QuestionnaireResponse", json=about(load_fixture(US_CORE_QR), patient_id), headers=headers)
    samples = {"Patient": patient_id, "QuestionnaireResponse": qr.json()["id"]}
    for declared in statement["rest"][0]["resource"]:
        resource_type = declared["type"]
        codes = {i["code"] for i in declared["interaction"]}
        if resource_type == "AuditEvent":  # administrators only, search only
            assert codes == {"search-type"}
            for param in declared["searchParam"]:
                probe = client.get(
                    "/fhir/AuditEvent", params={param["name"]: _probe_value(param, patient_id)}, headers=admin
                )
                assert probe.status_code == 200, probe.text
            continue
        search = client.get(f"/fhir/{resource_type}", params={"_count": 1}, headers=headers)
        assert search.status_code == 200, (resource_type, search.text)
        for param in declared.get("searchParam", []):
            probe = client.get(
                f"/fhir/{resource_type}",
                params={param["name"]: _probe_value(param, patient_id)},
                headers={**headers, "Prefer": "handling=strict"},
            )
            assert probe.status_code == 200, (resource_type, param, probe.text)
        writable = "create" in codes
        probe_write = client.post(f"/fhir/{resource_type}", json={"resourceType": resource_type}, headers=headers)
        assert (probe_write.status_code != 405) == writable, (resource_type, probe_write.status_code)
        if resource_type in samples:
            resource_id = samples[resource_type]
            assert client.get(f"/fhir/{resource_type}/{resource_id}", headers=headers).status_code == 200
            assert client.get(f"/fhir/{resource_type}/{resource_id}/_history/1", headers=headers).status_code == 200
            assert client.get(f"/fhir/{resource_type}/{resource_id}/_history", headers=headers).status_code == 200
    assert {i["code"] for i in statement["rest"][0]["interaction"]} == {"batch", "transaction"}


def _probe_value(param: dict[str, str], patient_id: str) -> str:
    return {"reference": f"Patient/{patient_id}", "date": "ge2020-01-01", "uri": "http://x"}.get(param["type"], "probe")


def test_scopes_narrow_what_a_role_may_do(client: TestClient, settings: Settings, tenant: str) -> None:
    def token(scope: str) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": settings.dev_issuer,
            "aud": settings.token_audience,
            "sub": "epic",
            "tenant": tenant,
            "role": "ehr-system",
            "scope": scope,
            "iat": now,
            "exp": now + 300,
        }
        return {
            "Authorization": "Bearer " + jwt.encode(claims, settings.dev_token_secret, algorithm="HS256"),
            "Content-Type": "application/fhir+json",
        }

    read_only = token("system/Patient.rs system/Observation.rs")
    assert client.get("/fhir/Patient", headers=read_only).status_code == 200
    assert client.post("/fhir/Patient", json=patient_resource(), headers=read_only).status_code == 403
    assert client.get("/fhir/QuestionnaireResponse", headers=read_only).status_code == 403
    v1 = token("system/*.read")
    assert client.get("/fhir/QuestionnaireResponse", headers=v1).status_code == 200
    assert client.post("/fhir/Patient", json=patient_resource(), headers=v1).status_code == 403
    patient_scoped = token("patient/*.rs")
    assert client.get("/fhir/Patient", headers=patient_scoped).status_code == 403


def test_another_tenant_is_invisible_on_every_read_path(
    client: TestClient, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    mine, theirs = fhir_headers(auth(new_tenant(), "ehr-system")), fhir_headers(auth(new_tenant(), "ehr-system"))
    foreign = _patient(client, theirs)
    client.post("/fhir/QuestionnaireResponse", json=about(load_fixture(US_CORE_QR), foreign), headers=theirs)
    foreign_mrn = client.get(f"/fhir/Patient/{foreign}", headers=theirs).json()["identifier"][0]
    missing = client.get("/fhir/Patient/00000000-0000-4000-8000-000000000000", headers=mine)
    leaked = client.get(f"/fhir/Patient/{foreign}", headers=mine)
    assert leaked.status_code == missing.status_code == 404
    assert client.get(f"/fhir/Patient/{foreign}/_history", headers=mine).status_code == 404
    assert client.get(f"/fhir/Patient/{foreign}/_history/1", headers=mine).status_code == 404
    for params in ({"_id": foreign}, {"identifier": f"{foreign_mrn['system']}|{foreign_mrn['value']}"}):
        assert client.get("/fhir/Patient", params=params, headers=mine).json()["total"] == 0
    observations = client.get(
        "/fhir/Observation", params={"patient": foreign, "_include": "Observation:patient"}, headers=mine
    ).json()
    assert observations["total"] == 0 and "entry" not in observations
    # Conditional create is no existence oracle: another tenant's identifier matches nothing here.
    probe = client.post(
        "/fhir/Patient",
        json=patient_resource(identifier=[foreign_mrn]),
        headers={**mine, "If-None-Exist": f"identifier={foreign_mrn['system']}|{foreign_mrn['value']}"},
    )
    assert probe.status_code == 201
    assert probe.json()["id"] != foreign
    # A bundle entry reading another tenant's record fails like a missing one.
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{foreign}"}}],
    }
    batch = client.post("/fhir", content=json.dumps(bundle), headers=mine).json()
    assert batch["entry"][0]["response"]["status"] == "404"
