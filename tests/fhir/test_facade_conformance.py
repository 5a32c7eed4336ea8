"""The facade against third-party code: sekmet's conformance_smoke scenario and the fhirpy client library,
both over HTTP to a real uvicorn server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhirclient.models.patient import Patient as FhirclientPatient
from fhirclient.server import FHIRServer
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from service.auth.tokens import mint_dev_token
from service.settings import Settings
from tests.builders import API, ApiDriver, patient_body
from tests.ehr_peer.sekmet_server import run_conformance_smoke
from tests.fhir.support import patient_resource
from tests.live_server import serve

# sekmet's conformance_smoke has 18 steps (one sets a variable). Every one passes but the two that need Patient
# DELETE, which Tandem refuses as a clinical decision (docs/fhir.md "Decisions worth knowing": a patient's identity
# and records are corrected, never deleted); sekmet skips them because the CapabilityStatement offers no delete.
SKIPPED_ON_PURPOSE = {"Delete", "Read after delete is 410 Gone (or 404)"}
# Every other step passes: 16 of 18. (The "17 of 18" cannot be: the two DELETE steps go together.)


@pytest.fixture
def live_fhir(client: TestClient) -> Iterator[str]:
    with serve(client.app) as base_url:  # type: ignore[arg-type]
        yield base_url + "/fhir"


def test_sekmet_conformance_smoke(
    live_fhir: str, client: TestClient, settings: Settings, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    # A hospital's server is never empty: a few patients already there, so paging has pages.
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    for _ in range(3):
        api.create("patients", patient_body())
    token = mint_dev_token(settings, tenant=tenant, role="ehr-system")
    outcome = run_conformance_smoke(live_fhir, token)
    failed = {step["name"] for step in outcome.steps if step["status"] in ("failed", "error", "warning")}
    skipped = {step["name"] for step in outcome.steps if step["status"] == "skipped"}
    print(
        f"conformance_smoke: {outcome.passed} passed, {outcome.failed} failed, {outcome.warnings} warnings, "
        f"{outcome.skipped} skipped ({sorted(skipped)})"
    )
    assert failed == set(), outcome.failures()
    assert skipped == SKIPPED_ON_PURPOSE
    assert (outcome.passed, len(outcome.steps)) == (16, 18)
    # Beyond the smoke: the same transaction with an MRN on the Patient; the heart rate (no category) is taken as
    # a vital sign, and found by the patient's family name with the Patient included.
    headers = {"Authorization": f"Bearer {token}"}
    patient_url = "urn:uuid:3f1c7c3e-0000-4000-8000-00000000beef"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:test:mrn", "value": f"SMK-{uuid.uuid4().hex[:8]}"}],
                    "name": [{"family": "TxPatientSmoke"}],
                    "gender": "male",
                    "birthDate": "1970-01-01",
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {  # sekmet's: a heart rate with no category
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                    "subject": {"reference": patient_url},
                    "effectiveDateTime": "2026-11-30T09:00:00+00:00",
                    "valueQuantity": {
                        "value": 72,
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    answered = client.post("/fhir", json=bundle, headers=headers)
    assert [e["response"]["status"] for e in answered.json()["entry"]] == ["201", "201"], answered.text
    found = client.get(
        "/fhir/Observation",
        params={"subject:Patient.family": "TxPatientSmoke", "_include": "Observation:subject"},
        headers=headers,
    ).json()
    assert sorted((e["resource"]["resourceType"], e["search"]["mode"]) for e in found["entry"]) == [
        ("Observation", "match"),
        ("Patient", "include"),
    ]


@pytest.fixture
def fhirpy_client(live_fhir: str, settings: Settings, tenant: str) -> SyncFHIRClient:
    token = mint_dev_token(settings, tenant=tenant, role="ehr-system")
    return SyncFHIRClient(live_fhir, authorization=f"Bearer {token}")


def test_an_off_the_shelf_client_creates_reads_pages_and_updates(fhirpy_client: SyncFHIRClient) -> None:
    created = []
    for n in range(7):
        patient = fhirpy_client.resource("Patient", **patient_resource(name=[{"family": f"Fhirpy{n}"}]))
        patient.save()
        assert patient.id
        created.append(patient.id)
    read = fhirpy_client.reference("Patient", created[0]).to_resource()
    assert read["name"][0]["family"] == "Fhirpy0"
    everyone = fhirpy_client.resources("Patient").limit(2).fetch_all()  # follows every next link
    assert set(created) <= {p.id for p in everyone}
    # count() sends _count=0&_totalMethod=count and reads Bundle.total.
    assert fhirpy_client.resources("Patient").count() == len(everyone)
    read["name"] = [{"family": "Fhirpy0-renamed"}]
    with pytest.raises(OperationOutcome, match="If-Match"):
        read.save()  # fhirpy sends no If-Match: it could be overwriting a newer version, so 428
    versioned = SyncFHIRClient(
        fhirpy_client.url, authorization=fhirpy_client.authorization, extra_headers={"If-Match": 'W/"1"'}
    )
    versioned.resource("Patient", **read).save()
    again = fhirpy_client.reference("Patient", created[0]).to_resource()
    assert again["name"][0]["family"] == "Fhirpy0-renamed"
    assert again["meta"]["versionId"] == "2"


def test_an_off_the_shelf_client_pages_a_patient_search(fhirpy_client: SyncFHIRClient) -> None:
    """Issue #21's done-when: Patient?family=…&birthdate=… is exactly the matches, paged by a client that follows
    the next links (fhirpy's fetch_all, two a page: three pages; fhirclient below)."""
    wanted = set()
    for n in range(5):
        patient = fhirpy_client.resource("Patient", **patient_resource(name=[{"family": f"Pagédsearch{n}"}]))
        patient.save()
        wanted.add(patient.id)
    # Neither matches both: another birth date, another family name.
    fhirpy_client.resource(
        "Patient", **patient_resource(name=[{"family": "Pagedsearch9"}], birthDate="1990-01-01")
    ).save()
    fhirpy_client.resource("Patient", **patient_resource(name=[{"family": "Otherfamily"}])).save()
    search = fhirpy_client.resources("Patient").search(family="pagedsearch", birthdate="1979-04-12").limit(2)
    found = [p.id for p in search.fetch_all()]
    assert sorted(found) == sorted(wanted)  # each once
    assert search.count() == 5


def test_the_smart_python_client_pages_a_patient_search(
    fhirpy_client: SyncFHIRClient, live_fhir: str, settings: Settings, tenant: str
) -> None:
    """The same search through fhirclient (SMART on FHIR's Python client): its iterator follows the next links and
    parses every page with its own R4 models."""
    wanted = set()
    for n in range(3):
        patient = fhirpy_client.resource("Patient", **patient_resource(name=[{"family": f"Smartpaged{n}"}]))
        patient.save()
        wanted.add(patient.id)
    fhirpy_client.resource(
        "Patient", **patient_resource(name=[{"family": "Smartpaged9"}], birthDate="1990-01-01")
    ).save()
    server = FHIRServer(None, base_uri=live_fhir + "/")
    server.session.headers["Authorization"] = f"Bearer {mint_dev_token(settings, tenant=tenant, role='ehr-system')}"
    search = FhirclientPatient.where(struct={"family": "smartpaged", "birthdate": "1979-04-12", "_count": "2"})
    pages = list(search.perform_iter(server))
    assert len(pages) == 2  # two, then one: the client followed the next link
    assert sorted(p.id for page in pages for p in (e.resource for e in page.entry or [])) == sorted(wanted)


def test_an_off_the_shelf_client_sends_a_transaction(fhirpy_client: SyncFHIRClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:9a1f0c62-0d5e-4c9e-8f7a-000000000001",
                "resource": patient_resource(name=[{"family": "Transactional"}]),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": _phq9_response("urn:uuid:9a1f0c62-0d5e-4c9e-8f7a-000000000001"),
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ],
    }
    response = fhirpy_client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"] for e in response["entry"]] == ["201", "201"]
    patient_id = response["entry"][0]["response"]["location"].split("/")[1]
    scored = fhirpy_client.resources("Observation").search(patient=patient_id, code="http://loinc.org|44261-6")
    assert [o["valueInteger"] for o in scored.fetch_all()] == [9]


def _phq9_response(subject: str, answer: str = "LA6569-3") -> dict[str, Any]:
    items = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://loinc.org/q/44249-1",
        "status": "completed",
        "subject": {"reference": subject},
        "authored": "2026-10-06T08:30:00Z",
        "item": [
            {"linkId": f"/{code}", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": answer}}]}
            for code in items
        ],
    }


def test_json_api_and_fhir_see_the_same_records(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    """The facade is a translator: a record written through either edge reads through the other."""
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patient_id = api.create("patients", patient_body(family_name="Bothways"))["id"]
    via_fhir = client.get(f"/fhir/Patient/{patient_id}", headers=api.headers).json()
    assert via_fhir["name"][0]["family"] == "Bothways"
    created = client.post(
        "/fhir/Patient",
        content=json.dumps(patient_resource(name=[{"family": "Fromfhir"}])),
        headers={**api.headers, "Content-Type": "application/fhir+json"},
    ).json()
    assert client.get(f"{API}/patients/{created['id']}", headers=api.headers).json()["family_name"] == "Fromfhir"
