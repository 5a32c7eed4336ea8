"""Vital-sign Observations sent on their own (BP panel 85354-9 or systolic 8480-6 / diastolic 8462-4 apart, heart
rate 8867-4, SpO2 59408-5 / 2708-6): taken at a ketamine session (its window) they feed its BP safety rules like
the session's own readings; otherwise they are the patient's screening vitals. Read back and searched as FHIR;
every refusal names the element and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.clock import now_utc
from tests.builders import API, ApiDriver, administration_body, enrollment_body
from tests.db_snapshot import database_checksum
from tests.fhir.support import fhir_headers

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]
}
SESSION_START = "2026-10-07T09:00:00+00:00"  # administration_body's session: 09:00-09:40


@pytest.fixture
def api(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> ApiDriver:
    return ApiDriver(client, auth(tenant, "ehr-system"))


@pytest.fixture
def headers(api: ApiDriver) -> dict[str, str]:
    return fhir_headers(api.headers)


def quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def vital(patient_id: str, code: str, when: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [VITAL_SIGNS],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        **value,
    }


def bp_panel(patient_id: str, when: str, systolic: int, diastolic: int) -> dict[str, Any]:
    return vital(
        patient_id,
        "85354-9",
        when,
        component=[
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": quantity(systolic, "mm[Hg]")},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": quantity(diastolic, "mm[Hg]")},
        ],
    )


def _reasons(api: ApiDriver, patient_id: str) -> dict[str, dict[str, Any]]:
    found = api.client.get(f"{API}/patients/{patient_id}/plan-status", headers=api.headers).json()["statuses"]
    return {r["code"]: r for r in found[0]["reasons"]}


def _session(api: ApiDriver) -> tuple[str, str]:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    session_id = str(api.create("ketamine-administrations", administration_body(patient_id))["id"])
    return patient_id, session_id


def test_a_bp_panel_in_a_session_window_attaches_to_it_and_raises_the_urgent_flag(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id, session_id = _session(api)
    assert "bp_urgent" not in _reasons(api, patient_id)
    # 40 minutes after the dose (CLINICAL.md section 3), 186/112: above the urgent level 180/110.
    created = client.post(
        "/fhir/Observation", json=bp_panel(patient_id, "2026-10-07T09:40:00+00:00", 186, 112), headers=headers
    )
    assert created.status_code == 201, created.text
    observation = created.json()
    assert observation["partOf"] == [{"reference": f"MedicationAdministration/{session_id}"}]
    assert [c["valueQuantity"]["value"] for c in observation["component"]] == [186, 112]
    assert observation["category"][0]["coding"][0]["code"] == "vital-signs"
    urgent = _reasons(api, patient_id)["bp_urgent"]
    assert urgent["severity"] == "urgent"
    assert "186/112 mmHg" in urgent["message"]
    assert urgent["record_ids"] == [session_id]


def test_a_pre_dose_bp_before_the_session_record_arrives_still_counts_for_it(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    created = client.post(
        "/fhir/Observation", json=bp_panel(patient_id, "2026-10-07T08:45:00+00:00", 150, 95), headers=headers
    )
    assert created.status_code == 201, created.text
    assert "partOf" not in created.json()  # no session yet: kept as the patient's vitals
    api.create("ketamine-administrations", administration_body(patient_id, vital_signs=[]))
    warning = _reasons(api, patient_id)["bp_predose_warning"]
    assert "150/95 mmHg" in warning["message"]


def test_a_bp_outside_any_session_is_the_patients_vitals_readable_and_searchable(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id, _ = _session(api)
    screening = "2026-10-01T10:15:00+00:00"  # a week before the first infusion
    created = client.post("/fhir/Observation", json=bp_panel(patient_id, screening, 186, 112), headers=headers)
    assert created.status_code == 201, created.text
    observation = created.json()
    assert "partOf" not in observation
    assert "bp_urgent" not in _reasons(api, patient_id)  # screening is not a session
    read = client.get(f"/fhir/Observation/{observation['id']}", headers=headers)
    assert read.status_code == 200 and read.json() == observation
    for params in (
        {"patient": patient_id, "code": f"{LOINC}|85354-9", "date": "le2026-10-02"},  # not the session's own
        {"subject": f"Patient/{patient_id}", "category": "vital-signs", "date": "2026-10-01"},
        {"patient": patient_id, "category": "vital-signs", "date": "lt2026-10-02"},
    ):
        found = client.get("/fhir/Observation", params=params, headers=headers).json()
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [observation["id"]], params
    listed = api.client.get(f"{API}/vital-signs", params={"patient_id": patient_id}, headers=api.headers).json()
    [stored] = listed["items"]
    assert (stored["systolic_mmhg"], stored["diastolic_mmhg"], stored["ketamine_administration_id"]) == (186, 112, None)


@pytest.mark.parametrize(
    ("code", "unit", "value", "field"),
    [
        ("8867-4", "/min", 72, "heart_rate_bpm"),
        ("59408-5", "%", 97, "spo2_percent"),
        ("2708-6", "%", 95, "spo2_percent"),
    ],
)
def test_heart_rate_and_spo2(
    client: TestClient, api: ApiDriver, headers: dict[str, str], code: str, unit: str, value: int, field: str
) -> None:
    patient_id, session_id = _session(api)
    resource = vital(patient_id, code, "2026-10-07T09:20:00+00:00", valueQuantity=quantity(value, unit))
    created = client.post("/fhir/Observation", json=resource, headers=headers)
    assert created.status_code == 201, created.text
    observation = created.json()
    assert observation["valueQuantity"] == quantity(value, unit)
    assert code in {c["code"] for c in observation["code"]["coding"]}
    assert observation["partOf"] == [{"reference": f"MedicationAdministration/{session_id}"}]
    listed = api.client.get(f"{API}/vital-signs", params={"patient_id": patient_id}, headers=api.headers).json()
    assert [v[field] for v in listed["items"]] == [value]


def test_systolic_and_diastolic_sent_apart_are_one_blood_pressure_for_the_safety_rules(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id, session_id = _session(api)
    when = "2026-10-07T09:40:00+00:00"
    for code, value in (("8480-6", 184), ("8462-4", 100)):
        created = client.post(
            "/fhir/Observation",
            json=vital(patient_id, code, when, valueQuantity=quantity(value, "mm[Hg]")),
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["valueQuantity"]["value"] == value
    urgent = _reasons(api, patient_id)["bp_urgent"]
    assert "184/100 mmHg" in urgent["message"] and urgent["record_ids"] == [session_id]


def _future() -> str:
    return (now_utc() + timedelta(days=2)).isoformat()


REFUSALS: list[tuple[str, Callable[[str], dict[str, Any]], str, str]] = [
    (
        "bp-in-kpa",
        lambda p: vital(
            p,
            "85354-9",
            SESSION_START,
            component=[
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": quantity(24, "kPa")},
                {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": quantity(15, "kPa")},
            ],
        ),
        "Observation.component[0].valueQuantity.code",
        "value",
    ),
    (
        "heart-rate-in-bpm",
        lambda p: vital(p, "8867-4", SESSION_START, valueQuantity={"value": 72, "unit": "bpm"}),
        "Observation.valueQuantity.code",
        "value",
    ),
    ("missing-value", lambda p: vital(p, "8867-4", SESSION_START), "Observation.valueQuantity", "required"),
    (
        "panel-without-diastolic",
        lambda p: vital(
            p,
            "85354-9",
            SESSION_START,
            component=[
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": quantity(120, "mm[Hg]")}
            ],
        ),
        "Observation.component",
        "required",
    ),
    (
        "impossible-bp",
        lambda p: bp_panel(p, SESSION_START, 400, 20),
        "Observation.component[0].valueQuantity.value",
        "value",
    ),
    (
        "impossible-spo2",
        lambda p: vital(p, "59408-5", SESSION_START, valueQuantity=quantity(140, "%")),
        "Observation.valueQuantity.value",
        "value",
    ),
    (
        "future-date",
        lambda p: vital(p, "8867-4", _future(), valueQuantity=quantity(72, "/min")),
        "Observation.effectiveDateTime",
        "value",
    ),
    (
        "no-time",
        lambda p: {
            k: v
            for k, v in vital(p, "8867-4", SESSION_START, valueQuantity=quantity(72, "/min")).items()
            if k != "effectiveDateTime"
        },
        "Observation.effective[x]",
        "required",
    ),
    (
        "no-subject",
        lambda p: {
            k: v
            for k, v in vital(p, "8867-4", SESSION_START, valueQuantity=quantity(72, "/min")).items()
            if k != "subject"
        },
        "Observation.subject",
        "required",
    ),
]


@pytest.mark.parametrize(("name", "build", "element", "issue_code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refused_vital_sign_names_the_element_and_stores_nothing(
    client: TestClient,
    api: ApiDriver,
    headers: dict[str, str],
    engine: Engine,
    name: str,
    build: Callable[[str], dict[str, Any]],
    element: str,
    issue_code: str,
) -> None:
    patient_id, _ = _session(api)
    before = database_checksum(engine, exclude={"audit_events"})
    refused = client.post("/fhir/Observation", json=build(patient_id), headers=headers)
    assert refused.status_code in (400, 422), refused.text
    [issue] = refused.json()["issue"]
    assert (issue["expression"], issue["code"]) == ([element], issue_code), issue
    assert database_checksum(engine, exclude={"audit_events"}) == before


def test_a_transaction_with_a_session_and_its_vitals(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    session_url = "urn:uuid:7c1e0d2a-5b3f-4e6a-9d8c-000000000001"
    administration = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130"}]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectivePeriod": {"start": SESSION_START, "end": "2026-10-07T09:40:00+00:00"},
        "dosage": {
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
            "dose": {"value": 35, "unit": "mg", "system": UCUM, "code": "mg"},
        },
    }
    pre = bp_panel(patient_id, "2026-10-07T08:50:00+00:00", 128, 82)
    after = bp_panel(patient_id, "2026-10-07T09:40:00+00:00", 186, 112)
    after["partOf"] = [{"reference": session_url}]
    pulse = vital(patient_id, "8867-4", "2026-10-07T09:40:00+00:00", valueQuantity=quantity(88, "/min"))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": session_url,
                "resource": administration,
                "request": {"method": "POST", "url": "MedicationAdministration"},
            },
            *({"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in (pre, after, pulse)),
        ],
    }
    answered = client.post("/fhir", json=bundle, headers=headers)
    assert answered.status_code == 200, answered.text
    entries = answered.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201"] * 4
    session_id = entries[0]["response"]["location"].split("/")[1]
    for entry in entries[1:]:
        observation_id = entry["response"]["location"].split("/")[1]
        read = client.get(f"/fhir/Observation/{observation_id}", headers=headers).json()
        assert read["partOf"] == [{"reference": f"MedicationAdministration/{session_id}"}]
    reasons = _reasons(api, patient_id)
    assert "186/112 mmHg" in reasons["bp_urgent"]["message"]


def test_a_refused_vital_sign_in_a_transaction_stores_nothing(
    client: TestClient, api: ApiDriver, headers: dict[str, str], engine: Engine
) -> None:
    patient_id, _ = _session(api)
    before = database_checksum(engine, exclude={"audit_events"})
    good = bp_panel(patient_id, "2026-10-07T09:40:00+00:00", 130, 80)
    bad = vital(patient_id, "8867-4", SESSION_START, valueQuantity={"value": 72, "unit": "bpm"})
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in (good, bad)],
    }
    refused = client.post("/fhir", json=bundle, headers=headers)
    assert refused.status_code in (400, 422), refused.text
    assert "Bundle.entry[1].Observation.valueQuantity.code" in str(refused.json())
    assert database_checksum(engine, exclude={"audit_events"}) == before


def test_observations_are_found_by_the_patients_family_name_through_the_chain(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    mine, other = api.patient(family_name="Pétrova"), api.patient(family_name="Petersen")
    ids = {}
    for patient_id in (mine, other):
        resource = vital(patient_id, "8867-4", "2026-10-01T10:00:00+00:00", valueQuantity=quantity(70, "/min"))
        ids[patient_id] = client.post("/fhir/Observation", json=resource, headers=headers).json()["id"]
    for name in ("subject:Patient.family", "subject.family", "patient.family", "patient:Patient.family"):
        found = client.get(
            "/fhir/Observation", params={name: "petrov", "_include": "Observation:subject"}, headers=headers
        )
        assert found.status_code == 200, found.text
        entries = found.json()["entry"]
        assert [(e["resource"]["id"], e["search"]["mode"]) for e in entries] == [
            (ids[mine], "match"),
            (mine, "include"),
        ], name
    nobody = client.get("/fhir/Observation", params={"subject:Patient.family": "nobody"}, headers=headers).json()
    assert nobody.get("entry", []) == []
    # Narrowed, never widened: the chain and a patient id together match only what both allow.
    both = client.get(
        "/fhir/Observation", params={"subject:Patient.family": "pet", "patient": other}, headers=headers
    ).json()
    assert [e["resource"]["id"] for e in both["entry"]] == [ids[other]]
    refused = client.get("/fhir/Observation", params={"subject:Patient.given": "x"}, headers=headers)
    assert refused.status_code == 400 and refused.json()["issue"][0]["code"] == "not-supported"
