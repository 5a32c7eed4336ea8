"""Enrolment over FHIR alone: a referral ServiceRequest enrols, holds, resumes, discharges and revokes, and an
open urgent finding stays visible whatever the hold (CLINICAL.md §4)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import fhirkit
import pytest
from fastapi.testclient import TestClient

from service.audit_trail import RequestContext
from service.auth.principal import Principal
from service.db.unit_of_work import unit_of_work
from service.record_store.enrollment_end import end_enrollment, end_patient_enrollments
from service.settings import Settings
from tests.builders import API, PHQ9_ITEMS, ApiDriver, questionnaire_body
from tests.fhir.support import fhir_headers

BASE = "https://tandem.example.org/fhir"  # overwritten from the served CapabilityStatement's canonical base
ORDER_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268"  # an Epic-style order id system


def _referral(patient_id: str, *, protocol_uri: str | None, **overrides: Any) -> dict[str, Any]:
    referral: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": ORDER_SYSTEM, "value": f"ORD-{datetime.now(UTC).timestamp()}"}],
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "306343005"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "370143000"}]}],
    }
    if protocol_uri is not None:
        referral["instantiatesUri"] = [protocol_uri]
    referral.update(overrides)
    return referral


def _canonical(client: TestClient, headers: dict[str, str]) -> str:
    """Our protocol URIs are under the canonical base, which the served CarePlans show."""
    served = client.get("/fhir/CodeSystem", headers=headers).json()
    url: str = served["entry"][0]["resource"]["url"]
    return url.split("/CodeSystem/")[0]


def _plan(api: ApiDriver, patient_id: str) -> dict[str, Any]:
    response = api.client.get(f"{API}/patients/{patient_id}/plan-status", headers=api.headers)
    assert response.status_code == 200, response.text
    statuses: list[dict[str, Any]] = response.json()["statuses"]
    return statuses[0]


def _put(client: TestClient, headers: dict[str, str], referral: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(referral)
    edited = f'W/"{changed.pop("meta")["versionId"]}"'
    changed.update(changes)
    response = client.put(
        f"/fhir/ServiceRequest/{referral['id']}", json=changed, headers={**headers, "If-Match": edited}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def ehr(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> tuple[ApiDriver, dict[str, str]]:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    return api, fhir_headers(api.headers)


def test_a_referral_enrols_and_its_status_holds_resumes_and_discharges(
    client: TestClient, ehr: tuple[ApiDriver, dict[str, str]]
) -> None:
    api, headers = ehr
    patient_id = api.patient()
    protocol = f"{_canonical(client, headers)}/protocol/esketamine-cbt"
    created = client.post("/fhir/ServiceRequest", json=_referral(patient_id, protocol_uri=protocol), headers=headers)
    assert created.status_code == 201, created.text
    referral = created.json()
    assert referral["status"] == "active" and referral["instantiatesUri"] == [protocol]
    assert [i for i in fhirkit.validate(referral) if i.severity == "error"] == []

    # The enrolment exists with the referral's protocol, and its plan status with it.
    [enrollment] = api.client.get(f"{API}/enrollments", params={"patient_id": patient_id}, headers=api.headers).json()[
        "items"
    ]
    assert enrollment["id"] == referral["id"] and enrollment["protocol_id"] == "esketamine-cbt"
    assert enrollment["status"] == "active"
    assert _plan(api, patient_id)["status"] in ("on_track", "needs_attention")
    care_plan = client.get(f"/fhir/CarePlan/{referral['id']}", headers=headers).json()
    assert care_plan["status"] == "active"

    # Read your writes: by id and by patient and status.
    assert client.get(f"/fhir/ServiceRequest/{referral['id']}", headers=headers).json()["id"] == referral["id"]
    found = client.get("/fhir/ServiceRequest", params={"patient": patient_id, "status": "active"}, headers=headers)
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [referral["id"]]

    held = _put(client, headers, referral, status="on-hold", note=[{"text": "Admitted to the ward"}])
    assert held["status"] == "on-hold" and held["note"] == [{"text": "Admitted to the ward"}]
    assert _plan(api, patient_id)["status"] == "on_hold"
    assert client.get(f"/fhir/CarePlan/{referral['id']}", headers=headers).json()["status"] == "on-hold"
    on_hold = client.get("/fhir/ServiceRequest", params={"patient": patient_id, "status": "on-hold"}, headers=headers)
    assert len(on_hold.json()["entry"]) == 1

    resumed = _put(client, headers, held, status="active", note=[])
    assert resumed["status"] == "active" and "note" not in resumed
    assert _plan(api, patient_id)["status"] != "on_hold"

    period = {"start": referral["occurrencePeriod"]["start"], "end": datetime.now(UTC).date().isoformat()}
    discharged = _put(client, headers, resumed, status="completed", occurrencePeriod=period)
    assert discharged["status"] == "completed"
    assert _plan(api, patient_id)["status"] == "completed"
    stored = api.client.get(f"{API}/enrollments/{referral['id']}", headers=api.headers).json()
    assert stored["status"] == "completed" and stored["end_date"] == period["end"]
    # What the referral does not carry is kept as stored.
    assert stored["protocol_version"] == enrollment["protocol_version"]


def test_a_revoked_referral_discontinues_with_its_reason(
    client: TestClient, ehr: tuple[ApiDriver, dict[str, str]]
) -> None:
    api, headers = ehr
    patient_id = api.patient()
    # The drug named by RxNorm chooses the built-in protocol (ketamine 6130 -> IV ketamine + CBT).
    sent = _referral(patient_id, protocol_uri=None)
    sent["code"]["coding"].append({"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130"})
    referral = client.post("/fhir/ServiceRequest", json=sent, headers=headers).json()
    revoked = _put(client, headers, referral, status="revoked", note=[{"text": "Declined ketamine after consent"}])
    assert revoked["status"] == "revoked"
    stored = api.client.get(f"{API}/enrollments/{referral['id']}", headers=api.headers).json()
    assert stored["protocol_id"] == "iv-ketamine-cbt"
    assert stored["status"] == "discontinued" and stored["status_reason"] == "Declined ketamine after consent"
    assert _plan(api, patient_id)["status"] == "discontinued"

    # entered-in-error ends it too, saying so; nothing is deleted.
    other = client.post("/fhir/ServiceRequest", json={**sent, "identifier": []}, headers=headers).json()
    _put(client, headers, other, status="entered-in-error")
    ended = api.client.get(f"{API}/enrollments/{other['id']}", headers=api.headers).json()
    assert ended["status"] == "discontinued" and "entered-in-error" in ended["status_reason"]


def _phq9(patient_id: str, item9: int, days_ago: float) -> dict[str, Any]:
    answers = [{"link_id": i, "value_integer": 2} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    authored = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return questionnaire_body(patient_id, answers=answers, authored_at=authored)


def test_a_hold_from_the_ehr_never_hides_an_open_item_9_flag(
    client: TestClient, ehr: tuple[ApiDriver, dict[str, str]], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api, headers = ehr
    patient_id = api.patient()
    protocol = f"{_canonical(client, headers)}/protocol/iv-ketamine-cbt"
    referral = client.post("/fhir/ServiceRequest", json=_referral(patient_id, protocol_uri=protocol), headers=headers)
    api.create("questionnaire-responses", _phq9(patient_id, item9=2, days_ago=1))
    assert _plan(api, patient_id)["status"] == "at_risk"

    current = referral.json()
    for status in ("on-hold", "completed", "revoked"):
        current = _put(client, headers, current, status=status, note=[{"text": "In crisis; admitted"}])
        plan = _plan(api, patient_id)
        assert plan["status"] == "at_risk", status
        assert plan["enrollment_status"] == {"revoked": "discontinued"}.get(status, status)
        urgent = [r["code"] for r in plan["reasons"] if r["open"] and r["severity"] == "urgent"]
        assert urgent[:1] == ["phq9_item9_positive"]
        rows = client.get(f"{API}/caseload", params={"status": "at_risk"}, headers=auth(tenant, "coordinator"))
        assert [row["patient_id"] for row in rows.json()["rows"]] == [patient_id], status
        flags = client.get("/fhir/Flag", params={"patient": patient_id, "status": "active"}, headers=headers).json()
        assert len(flags["entry"]) == 1


@pytest.mark.parametrize(
    ("change", "element"),
    [
        ({"subject": None}, "ServiceRequest.subject"),
        ({"subject": {"reference": "Patient/not-here"}}, "ServiceRequest.subject"),
        ({"code": {"coding": [{"system": "http://snomed.info/sct", "code": "183519002"}]}}, "ServiceRequest.code"),
        ({"code": None}, "ServiceRequest.code"),
        ({}, "ServiceRequest.instantiatesUri"),  # the programme, but no protocol and no rule to choose one
        ({"instantiatesUri": ["{base}/protocol/no-such-protocol"]}, "ServiceRequest.instantiatesUri[0]"),
        ({"intent": "proposal"}, "ServiceRequest.intent"),
        ({"status": "draft"}, "ServiceRequest.status"),
        ({"authoredOn": None, "instantiatesUri": ["{base}/protocol/iv-ketamine-cbt"]}, "ServiceRequest.authoredOn"),
    ],
)
def test_what_cannot_be_an_enrolment_is_refused_naming_the_element_and_nothing_is_stored(
    client: TestClient, ehr: tuple[ApiDriver, dict[str, str]], change: dict[str, Any], element: str
) -> None:
    api, headers = ehr
    patient_id = api.patient()
    base = _canonical(client, headers)
    sent = _referral(patient_id, protocol_uri=None)
    for name, value in change.items():
        if value is None:
            sent.pop(name)
        else:
            sent[name] = [v.replace("{base}", base) for v in value] if name == "instantiatesUri" else value
    response = client.post("/fhir/ServiceRequest", json=sent, headers=headers)
    assert response.status_code in (400, 422), response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"]] == [[element]]
    assert outcome["issue"][0]["diagnostics"]
    listed = api.client.get(f"{API}/enrollments", params={"patient_id": patient_id}, headers=api.headers).json()
    assert listed["items"] == []


def test_a_referral_in_a_transaction_enrols_the_patient_it_creates(
    client: TestClient, ehr: tuple[ApiDriver, dict[str, str]]
) -> None:
    api, headers = ehr
    base = _canonical(client, headers)
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:oid:2.16.840.1.113883.3.7418.2", "value": f"MRN-{datetime.now(UTC).timestamp()}"}
        ],
        "name": [{"family": "Mbeki", "given": ["Thandi"]}],
        "gender": "female",
        "birthDate": "1984-02-02",
    }
    referral = _referral("x", protocol_uri=f"{base}/protocol/iv-ketamine-cbt")
    referral["subject"] = {"reference": "urn:uuid:1b0c5a2e-0000-4000-8000-000000000001"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:1b0c5a2e-0000-4000-8000-000000000001",
                "resource": patient,
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": referral, "request": {"method": "POST", "url": "ServiceRequest"}},
        ],
    }
    response = client.post("/fhir", json=bundle, headers=headers)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert [s.split()[0] for s in statuses] == ["201", "201"]
    patient_id = response.json()["entry"][0]["response"]["location"].split("/")[1]
    [enrollment] = api.client.get(f"{API}/enrollments", params={"patient_id": patient_id}, headers=api.headers).json()[
        "items"
    ]
    assert enrollment["protocol_id"] == "iv-ketamine-cbt"


def test_end_enrollment_ends_open_enrolments_with_the_reason_and_keeps_urgent_findings_visible(
    client: TestClient, ehr: tuple[ApiDriver, dict[str, str]], settings: Settings, tenant: str
) -> None:
    api, headers = ehr
    patient_id = api.patient()
    protocol = f"{_canonical(client, headers)}/protocol/iv-ketamine-cbt"
    referral = client.post("/fhir/ServiceRequest", json=_referral(patient_id, protocol_uri=protocol), headers=headers)
    api.create("questionnaire-responses", _phq9(patient_id, item9=1, days_ago=1))
    principal = Principal(subject="test", tenant_id=tenant, role="ehr-system", scopes=None, client_id=None)
    ctx = RequestContext(principal=principal, request_id=str(uuid.uuid4()), settings=settings)
    today = datetime.now(UTC).date()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with unit_of_work(engine) as session:
        # Not a death: a deceased patient's outreach stops instead (CLINICAL.md §5, test_deceased_patient.py).
        ended = end_patient_enrollments(session, ctx, patient_id, reason="Moved out of area", end_date=today)
    assert [e.id for e in ended] == [referral.json()["id"]]
    stored = api.client.get(f"{API}/enrollments/{ended[0].id}", headers=api.headers).json()
    assert (stored["status"], stored["status_reason"], stored["end_date"]) == (
        "discontinued",
        "Moved out of area",
        today.isoformat(),
    )
    assert client.get(f"/fhir/ServiceRequest/{ended[0].id}", headers=headers).json()["status"] == "revoked"
    assert _plan(api, patient_id)["status"] == "at_risk"  # the open item-9 finding is not hidden by the ending
    with unit_of_work(engine) as session:
        assert end_enrollment(session, ctx, ended[0].id, reason="again") is None  # already ended: left as it is


def test_the_capability_statement_declares_the_referral_writes_and_says_how(
    client: TestClient, ehr: tuple[ApiDriver, dict[str, str]]
) -> None:
    _, headers = ehr
    statement = client.get("/fhir/metadata", headers=headers).json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "ServiceRequest"]
    assert {"create", "update", "read", "search-type"} <= {i["code"] for i in entry["interaction"]}
    assert "delete" not in {i["code"] for i in entry["interaction"]}
    assert {"patient", "status", "identifier"} <= {p["name"] for p in entry["searchParam"]}
    assert "on-hold" in entry["documentation"] and "EpisodeOfCare" in entry["documentation"]
    assert not [r for r in statement["rest"][0]["resource"] if r["type"] == "EpisodeOfCare"]
