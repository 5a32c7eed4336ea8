"""A transaction Bundle runs its entries in R4's order and its GET entries see what its writes derived
(issue #17, item 1).

R4 http.html#trules: DELETE, then POST, then PUT/PATCH, then GET/HEAD, whatever order the entries are listed
in; the response lists them in request order. The plan status, CarePlan and Flags a QuestionnaireResponse
changes are refreshed once per changed patient, before the first GET entry reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from service.fhir.bundles import transaction_order
from tests.builders import ApiDriver, enrollment_body
from tests.fhir.support import fhir_headers, patient_resource
from tests.fhir.test_facade_conformance import _phq9_response

ITEM9_NEARLY_EVERY_DAY = "LA6571-9"


def _positive_item9(patient_id: str) -> dict[str, Any]:
    response = _phq9_response(f"Patient/{patient_id}", answer="LA6568-5")  # "not at all" to every item ...
    response["item"][8]["answer"] = [{"valueCoding": {"system": "http://loinc.org", "code": ITEM9_NEARLY_EVERY_DAY}}]
    response["authored"] = (datetime.now(UTC) - timedelta(hours=2)).isoformat()  # ... but item 9, just now
    return response


def _plan_codes(care_plan: dict[str, Any]) -> list[str]:
    return [c["code"] for c in care_plan["extension"][0]["valueCodeableConcept"]["coding"]]


def test_r4_order_deletes_creates_updates_reads_each_in_request_order() -> None:
    methods = ["GET", "PUT", "POST", "DELETE", "POST", "GET"]
    entries = [{"request": {"method": m, "url": "Patient"}} for m in methods]
    assert transaction_order(entries) == [3, 2, 4, 1, 0, 5]


def test_a_get_listed_before_a_post_sees_the_status_the_post_produced(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    headers = fhir_headers(api.headers)
    patient_id = api.patient()
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    enrollment_id = api.create("enrollments", enrollment_body(patient_id, start_date=start))["id"]
    before = client.get(f"/fhir/CarePlan/{enrollment_id}", headers=headers).json()
    assert "phq9_item9_positive" not in _plan_codes(before)
    versions_before = len(client.get(f"/fhir/CarePlan/{enrollment_id}/_history", headers=headers).json()["entry"])

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": f"Flag?patient={patient_id}"}},  # listed first, run last
            {"resource": _positive_item9(patient_id), "request": {"method": "POST", "url": "QuestionnaireResponse"}},
            {"request": {"method": "GET", "url": f"CarePlan?patient={patient_id}"}},
            {"request": {"method": "GET", "url": f"CarePlan/{enrollment_id}"}},
        ],
    }
    response = client.post("/fhir", content=json.dumps(bundle), headers=headers)
    assert response.status_code == 200, response.text
    flags, created, plans, plan = response.json()["entry"]  # answered in request order

    assert created["response"]["status"].startswith("201")
    assert created["response"]["location"].startswith("QuestionnaireResponse/")
    [flag] = [e["resource"] for e in flags["resource"].get("entry", [])]
    assert flag["status"] == "active" and flag["code"]["coding"][0]["code"] == "phq9_item9_positive"
    [searched] = [e["resource"] for e in plans["resource"]["entry"]]
    for care_plan in (searched, plan["resource"]):
        assert care_plan["id"] == enrollment_id
        assert _plan_codes(care_plan)[0] == "at_risk" and "phq9_item9_positive" in _plan_codes(care_plan)

    # Once per changed patient: the Bundle added one CarePlan version, and what it answered is what is stored.
    history = client.get(f"/fhir/CarePlan/{enrollment_id}/_history", headers=headers).json()["entry"]
    assert len(history) == versions_before + 1
    assert client.get(f"/fhir/CarePlan/{enrollment_id}", headers=headers).json() == plan["resource"]


def test_a_delete_runs_before_a_get_listed_first(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    headers = fhir_headers(api.headers)
    patient_id = api.patient()
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    api.create("enrollments", enrollment_body(patient_id, start_date=start))
    stored = client.post("/fhir/QuestionnaireResponse", json=_positive_item9(patient_id), headers=headers)
    assert stored.status_code == 201, stored.text
    flagged = client.get("/fhir/Flag", params={"patient": patient_id, "status": "active"}, headers=headers).json()
    assert len(flagged.get("entry", [])) == 1

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": f"QuestionnaireResponse/{stored.json()['id']}"}},
            {"request": {"method": "GET", "url": f"Flag?patient={patient_id}&status=active"}},
            {"request": {"method": "DELETE", "url": f"QuestionnaireResponse/{stored.json()['id']}"}},
        ],
    }
    response = client.post("/fhir", content=json.dumps(bundle), headers=headers)
    assert response.status_code == 410, response.text  # the read ran after the delete: gone, the Bundle refused
    assert client.get(f"/fhir/QuestionnaireResponse/{stored.json()['id']}", headers=headers).status_code == 200

    bundle["entry"] = bundle["entry"][1:]
    response = client.post("/fhir", content=json.dumps(bundle), headers=headers)
    assert response.status_code == 200, response.text
    flags, deleted = response.json()["entry"]
    assert deleted["response"]["status"].startswith("200")
    assert flags["resource"].get("entry", []) == []  # the evidence was withdrawn first: no active flag


def test_a_get_listed_before_a_put_reads_the_update(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    created = client.post("/fhir/Patient", json=patient_resource(name=[{"family": "Beforeput"}]), headers=headers)
    assert created.status_code == 201, created.text
    renamed = {**created.json(), "name": [{"family": "Afterput", "given": ["Pat"]}]}
    renamed.pop("meta", None)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{renamed['id']}"}},
            {"resource": renamed, "request": {"method": "PUT", "url": f"Patient/{renamed['id']}", "ifMatch": 'W/"1"'}},
        ],
    }
    response = client.post("/fhir", content=json.dumps(bundle), headers=headers)
    assert response.status_code == 200, response.text
    read, updated = response.json()["entry"]
    assert updated["response"]["status"].startswith("200")
    assert read["resource"]["name"][0]["family"] == "Afterput"
