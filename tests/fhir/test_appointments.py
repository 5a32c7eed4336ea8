"""FHIR Appointment → a planned session: the next booked one is the next due date, a no-show counts as missed, a
cancelled one no longer holds the slot; writable, searchable, served as valid R4, refused with the element named."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fhirkit
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import Engine
from typer.testing import CliRunner

from service.cli import app as cli
from service.settings import get_settings
from service.sync.capabilities import decide, parse_capabilities
from tests.builders import PHQ9_ITEMS, enrollment_body, questionnaire_body
from tests.db_snapshot import database_checksum
from tests.fhir.support import fhir_headers, patient_resource
from tests.shared_fixtures import load_fixture

API = "/api/v1"
NOW = datetime.now(UTC)
SNOMED_CBT = {"system": "http://snomed.info/sct", "code": "228557008", "display": "Cognitive and behavioral therapy"}
EPIC_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8"


@pytest.fixture
def headers(tenant: str, auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return fhir_headers(auth(tenant, "ehr-system"))


def _when(days: float) -> str:
    return (NOW + timedelta(days=days)).replace(microsecond=0).isoformat()


def _enrolled(client: TestClient, headers: dict[str, str], auth_headers: dict[str, str]) -> str:
    """A patient enrolled 3 days ago with a baseline PHQ-9 yesterday: nothing else is due for the next week."""
    created = client.post("/fhir/Patient", json=patient_resource(), headers=headers)
    assert created.status_code == 201, created.text
    patient_id = str(created.json()["id"])
    start = (NOW - timedelta(days=3)).date().isoformat()
    body = enrollment_body(patient_id, start_date=start)
    enrolled = client.post(f"{API}/enrollments", json=body, headers=auth_headers)
    assert enrolled.status_code == 201, enrolled.text
    answers = [{"link_id": i, "value_integer": 2} for i in PHQ9_ITEMS]
    answers[-1]["value_integer"] = 0
    phq9 = questionnaire_body(patient_id, authored_at=_when(-1), answers=answers)
    assert client.post(f"{API}/questionnaire-responses", json=phq9, headers=auth_headers).status_code == 201
    return patient_id


def appointment(patient_id: str, **overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "identifier": [{"system": EPIC_SYSTEM, "value": f"APPT-{uuid.uuid4().hex[:8]}"}],
        "status": "booked",
        "serviceType": [{"coding": [SNOMED_CBT]}],
        "start": _when(2),
        "end": _when(2 + 50 / 1440),
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    }
    resource.update(overrides)
    return resource


def _status(client: TestClient, patient_id: str, auth_headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{API}/patients/{patient_id}/plan-status", headers=auth_headers)
    assert response.status_code == 200, response.text
    (status,) = response.json()["statuses"]
    return dict(status)


def _caseload_row(client: TestClient, patient_id: str, auth_headers: dict[str, str]) -> dict[str, Any]:
    rows = client.get(f"{API}/caseload", params={"limit": 200}, headers=auth_headers).json()["rows"]
    (row,) = [r for r in rows if r["patient_id"] == patient_id]
    return dict(row)


def _same_instant(a: str, b: str) -> bool:
    return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(b.replace("Z", "+00:00"))


def test_a_booked_cbt_appointment_is_the_next_cbt_due_on_the_caseload(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    coordinator = auth(tenant, "coordinator")
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    before = _status(client, patient_id, coordinator)["next_due"]["cbt_session"]
    assert before is None  # CBT starts with the induction: nothing is due before a first infusion
    sent = appointment(patient_id)
    created = client.post("/fhir/Appointment", json=sent, headers=headers)
    assert created.status_code == 201, created.text
    due = _status(client, patient_id, coordinator)["next_due"]["cbt_session"]
    assert due["booked"] is True and due["after_record_id"] == created.json()["id"]
    assert _same_instant(due["due_at"], sent["start"]) and due["overdue"] is False
    row = _caseload_row(client, patient_id, coordinator)
    assert row["next_due_kind"] == "cbt_session" and _same_instant(row["next_due_at"], sent["start"])


def test_cancelled_no_longer_holds_the_slot_and_a_put_updates_the_status(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    coordinator = auth(tenant, "coordinator")
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    sent = appointment(patient_id)
    created = client.post("/fhir/Appointment", json=sent, headers=headers).json()
    later = appointment(patient_id, start=_when(9), end=_when(9 + 50 / 1440))
    assert client.post("/fhir/Appointment", json=later, headers=headers).status_code == 201
    cancelled = {**sent, "id": created["id"], "status": "cancelled", "cancelationReason": {"text": "Patient unwell"}}
    put = client.put(f"/fhir/Appointment/{created['id']}", json=cancelled, headers={**headers, "If-Match": 'W/"1"'})
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "cancelled" and put.json()["cancelationReason"] == {"text": "Patient unwell"}
    due = _status(client, patient_id, coordinator)["next_due"]["cbt_session"]
    assert _same_instant(due["due_at"], later["start"])  # the next booking is due now, not the cancelled one
    assert _caseload_row(client, patient_id, coordinator)["next_due_at"] != sent["start"]
    status = _status(client, patient_id, coordinator)
    assert status["counts"]["cbt_missed"] == 0  # a cancellation is not a missed session (EHRs cancel to rebook)


def test_a_no_show_counts_as_one_missed_session_and_two_make_a_streak(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    coordinator = auth(tenant, "coordinator")
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    first = appointment(patient_id, status="noshow", start=_when(-2), end=_when(-2 + 50 / 1440))
    created = client.post("/fhir/Appointment", json=first, headers=headers)
    assert created.status_code == 201, created.text
    status = _status(client, patient_id, coordinator)
    assert status["counts"]["cbt_missed"] == 1
    assert status["counts"]["cbt"]["done"] == 0
    second = appointment(patient_id, status="noshow", start=_when(-1), end=_when(-1 + 50 / 1440))
    assert client.post("/fhir/Appointment", json=second, headers=headers).status_code == 201
    status = _status(client, patient_id, coordinator)
    assert status["counts"]["cbt_missed"] == 2
    streak = [r for r in status["reasons"] if r["code"] == "cbt_no_show_streak"]
    assert len(streak) == 1 and created.json()["id"] in streak[0]["record_ids"]


def test_a_fulfilled_appointment_is_an_attended_session_once(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    coordinator, ehr = auth(tenant, "coordinator"), auth(tenant, "ehr-system")
    patient_id = _enrolled(client, headers, ehr)
    sent = appointment(patient_id, status="fulfilled", start=_when(-1), end=_when(-1 + 50 / 1440))
    assert client.post("/fhir/Appointment", json=sent, headers=headers).status_code == 201
    status = _status(client, patient_id, coordinator)
    assert status["counts"]["cbt"]["done"] == 1
    assert status["next_due"]["cbt_session"] is None or not status["next_due"]["cbt_session"]["booked"]
    # The visit's own record of the same day is the session: the appointment does not count a second time.
    session = {
        "patient_id": patient_id,
        "session_number": 1,
        "planned_start": sent["start"],
        "actual_start": sent["start"],
        "status": "attended",
    }
    assert client.post(f"{API}/cbt-sessions", json=session, headers=ehr).status_code == 201
    assert _status(client, patient_id, coordinator)["counts"]["cbt"]["done"] == 1


def test_a_resend_is_idempotent_and_searches_find_it(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    sent = appointment(patient_id)
    first = client.post("/fhir/Appointment", json=sent, headers=headers)
    again = client.post("/fhir/Appointment", json=sent, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    identifier = sent["identifier"][0]
    for params in (
        {"patient": f"Patient/{patient_id}"},
        {"patient": patient_id, "status": "booked"},
        {"patient": patient_id, "date": f"ge{_when(1)[:10]}"},
        {"identifier": f"{identifier['system']}|{identifier['value']}"},
    ):
        found = client.get("/fhir/Appointment", params=params, headers=headers).json()
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [first.json()["id"]], params
    for params in ({"patient": patient_id, "status": "cancelled"}, {"patient": patient_id, "date": "lt2020-01-01"}):
        assert client.get("/fhir/Appointment", params=params, headers=headers).json().get("entry", []) == []


def test_the_appointment_served_back_is_valid_r4(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    cpt = {"system": "http://www.ama-assn.org/go/cpt", "code": "90837"}
    sent = appointment(patient_id, serviceType=[{"coding": [cpt]}], description="Weekly CBT")
    created = client.post("/fhir/Appointment", json=sent, headers=headers)
    assert created.status_code == 201, created.text
    served = client.get(f"/fhir/Appointment/{created.json()['id']}", headers=headers).json()
    get_fhir_model_class("Appointment").model_validate(served)
    assert [str(i) for i in fhirkit.validate(served) if i.severity == "error"] == []
    assert served["status"] == "booked" and served["description"] == "Weekly CBT"
    assert cpt in served["serviceType"][0]["coding"]  # the sender's code comes back beside ours
    assert {"reference": f"Patient/{patient_id}"} == served["participant"][0]["actor"]
    assert sent["identifier"][0] | {"use": "secondary"} in served["identifier"]
    assert _same_instant(served["start"], sent["start"]) and served["minutesDuration"] == 50


def test_appointments_in_a_transaction_bundle(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    esketamine = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2201623"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": appointment(patient_id), "request": {"method": "POST", "url": "Appointment"}},
            {
                "resource": appointment(patient_id, serviceType=[{"coding": [esketamine]}], start=_when(1),
                                        end=_when(1 + 2 / 24)),
                "request": {"method": "POST", "url": "Appointment"},
            },
        ],
    }  # fmt: skip
    response = client.post("/fhir", json=bundle, headers=headers)
    assert response.status_code == 200, response.text
    assert [e["response"]["status"][:3] for e in response.json()["entry"]] == ["201", "201"]
    status = _status(client, patient_id, auth(tenant, "coordinator"))
    assert status["next_due"]["ketamine_session"]["booked"] is True
    assert _same_instant(status["next_due"]["ketamine_session"]["due_at"], _when(1))


@pytest.mark.parametrize(
    ("change", "element", "code"),
    [
        ({"participant": [{"actor": {"reference": "Practitioner/x"}, "status": "accepted"}]},
         "Appointment.participant", "required"),
        ({"serviceType": [{"coding": [{"system": "http://snomed.info/sct", "code": "394814009"}]}]},
         "Appointment.serviceType", "not-supported"),
        ({"end": _when(1)}, "Appointment.end", "invariant"),
        ({"status": "done"}, "Appointment.status", "code-invalid"),
        ({"start": "2026-12-10"}, "Appointment.start", "value"),
    ],
)  # fmt: skip
def test_bad_appointments_are_refused_naming_the_element_and_change_nothing(
    client: TestClient,
    engine: Engine,
    headers: dict[str, str],
    tenant: str,
    auth: Callable[..., dict[str, str]],
    change: dict[str, Any],
    element: str,
    code: str,
) -> None:
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    before = database_checksum(engine, exclude={"audit_events"})  # the refusal is audited
    response = client.post("/fhir/Appointment", json=appointment(patient_id, **change), headers=headers)
    assert response.status_code in (400, 422), response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == [element] and issue["code"] == code, issue
    assert database_checksum(engine, exclude={"audit_events"}) == before


def test_push_follows_the_capability_table() -> None:
    """Oracle Health creates Appointments but cannot search them by identifier (a retried create could duplicate
    one); Epic only reads them: neither is sent, and the decision says why."""
    for name, why in (
        ("oracle-health-r4-capabilitystatement.json", "cannot search it by identifier"),
        ("epic-r4-sandbox-capabilitystatement.json", "accepts no Appointment writes"),
    ):
        decision = decide("appointments", parse_capabilities(load_fixture(f"ehr-capabilities/{name}")))
        assert decision.mapping == "not_supported" and why in str(decision.reason), (name, decision.reason)
    writable = {
        "resourceType": "CapabilityStatement",
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": "Appointment",
                        "interaction": [{"code": "create"}],
                        "searchParam": [{"name": "identifier"}],
                    }
                ],
            }
        ],
    }
    assert decide("appointments", parse_capabilities(writable)).mapping == "natural"


def test_tandem_import_takes_appointments_once_and_reports_refusals(
    client: TestClient,
    headers: dict[str, str],
    tenant: str,
    auth: Callable[..., dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
) -> None:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    good = appointment(patient_id)
    bad = appointment(patient_id, participant=[])
    file = tmp_path / "appointments.ndjson"
    file.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    first = CliRunner().invoke(cli, ["import", str(file), "--tenant", tenant])
    assert "accepted 1 (1 created, 0 already present), refused 1" in first.output, first.output
    assert "Appointment.participant" in first.output
    again = CliRunner().invoke(cli, ["import", str(file), "--tenant", tenant])
    assert "accepted 1 (0 created, 1 already present), refused 1" in again.output, again.output
    due = _status(client, patient_id, auth(tenant, "coordinator"))["next_due"]["cbt_session"]
    assert due["booked"] is True and _same_instant(due["due_at"], good["start"])


def test_a_deleted_appointment_is_entered_in_error_and_no_longer_due(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    coordinator = auth(tenant, "coordinator")
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    created = client.post("/fhir/Appointment", json=appointment(patient_id), headers=headers).json()
    assert _status(client, patient_id, coordinator)["next_due"]["cbt_session"]["booked"] is True
    assert client.delete(f"/fhir/Appointment/{created['id']}", headers=headers).status_code in (200, 204)
    assert client.get(f"/fhir/Appointment/{created['id']}", headers=headers).status_code == 410
    stored = client.get(f"{API}/appointments/{created['id']}", headers=coordinator).json()
    assert stored["status"] == "entered-in-error"
    assert _status(client, patient_id, coordinator)["next_due"]["cbt_session"] is None


def test_a_site_visit_type_is_read_through_the_targets_code_map(
    client: TestClient, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    patient_id = _enrolled(client, headers, auth(tenant, "ehr-system"))
    site = {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.30", "code": "1023", "display": "CBT FOLLOW UP"}
    sent = appointment(patient_id, serviceType=[{"coding": [site]}])
    refused = client.post("/fhir/Appointment", json=sent, headers=headers)
    assert refused.status_code in (400, 422) and "code_map" in refused.json()["issue"][0]["diagnostics"]
    target = {
        "name": f"Epic {uuid.uuid4().hex[:6]}",
        "base_url": "https://93.184.216.34/fhir",
        "code_map": {"http://snomed.info/sct|228557008": [{"system": site["system"], "code": site["code"]}]},
    }
    registered = client.post(f"{API}/sync/targets", json=target, headers=auth(tenant, "admin"))
    assert registered.status_code == 201, registered.text
    created = client.post("/fhir/Appointment", json=sent, headers=headers)
    assert created.status_code == 201, created.text
    stored = client.get(f"{API}/appointments/{created.json()['id']}", headers=auth(tenant, "coordinator")).json()
    assert stored["service"] == "cbt"
    assert site in created.json()["serviceType"][0]["coding"]  # served back as sent, beside the standard code
