"""Score Observations (EHR flowsheet rows, US Core screening assessments) as first-class inputs: the total by LOINC
in any numeric value form, items as components, US Core panels with hasMember in a Bundle; read back as the total
Observation of the stored response; every refusal names the element and changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.builders import API, ApiDriver, enrollment_body
from tests.db_snapshot import database_checksum
from tests.fhir.support import about, fhir_headers
from tests.shared_fixtures import load_fixture

US_CORE_TOTAL = "fhir/uscore7-Observation-PHQ9-item-example-44261-6.json"
US_CORE_PANEL = "fhir/uscore7-Observation-PHQ9-panel-example-44249-1.json"
LOINC = "http://loinc.org"
SURVEY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}
# PHQ-9 items in order (CLINICAL.md section 2); the ninth, 44260-8, is self-harm.
PHQ9_ITEMS = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8")
LL358_3 = ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")  # scores 0-3


@pytest.fixture
def api(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> ApiDriver:
    return ApiDriver(client, auth(tenant, "ehr-system"))


@pytest.fixture
def headers(api: ApiDriver) -> dict[str, str]:
    return fhir_headers(api.headers)


def total_observation(patient_id: str, value: dict[str, Any], code: str = "44261-6", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [SURVEY],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2026-11-30T09:00:00+00:00",
        **value,
        **extra,
    }


def item_components(scores: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": LL358_3[score]}]},
        }
        for code, score in zip(PHQ9_ITEMS, scores, strict=True)
    ]


def _stored_response(api: ApiDriver, patient_id: str) -> dict[str, Any]:
    listed = api.client.get(f"{API}/questionnaire-responses", params={"patient_id": patient_id}, headers=api.headers)
    [response] = listed.json()["items"]
    return dict(response)


def _status(api: ApiDriver, patient_id: str) -> dict[str, Any]:
    found = api.client.get(f"{API}/patients/{patient_id}/plan-status", headers=api.headers).json()["statuses"]
    return dict(found[0])


@pytest.mark.parametrize(
    "value",
    [
        {"valueInteger": 11},
        {"valueQuantity": {"value": 11, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}},
        {"valueQuantity": {"value": 11}},
        {"valueString": "11"},
        {"valueString": " 11 "},
    ],
    ids=["integer", "quantity-score", "quantity-unitless", "string", "string-padded"],
)
def test_a_total_in_any_numeric_form_is_stored_total_only_and_read_back(
    client: TestClient, api: ApiDriver, headers: dict[str, str], value: dict[str, Any]
) -> None:
    patient_id = api.patient()
    created = client.post("/fhir/Observation", json=total_observation(patient_id, value), headers=headers)
    assert created.status_code == 201, created.text
    observation = created.json()
    assert (observation["resourceType"], observation["valueInteger"], observation["status"]) == (
        "Observation",
        11,
        "final",
    )
    assert observation["note"][0]["text"].startswith("items not reported")
    location = created.headers["location"]
    assert f"/fhir/Observation/{observation['id']}/_history/" in location
    assert client.get(f"/fhir/Observation/{observation['id']}", headers=headers).json() == observation
    found = client.get(
        "/fhir/Observation", params={"patient": patient_id, "code": f"{LOINC}|44261-6"}, headers=headers
    ).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [observation["id"]]
    stored = _stored_response(api, patient_id)
    assert (stored["instrument"], stored["sent_total"], stored["answers"]) == ("phq-9", 11, [])
    score = stored["score"]
    assert (score["total"], score["severity"], score["items_reported"], score["complete"]) == (
        11,
        "moderate",
        False,
        True,
    )


def test_the_us_core_value_string_example_is_taken_as_12(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id = api.patient()
    resource = about(load_fixture(US_CORE_TOTAL), patient_id)
    created = client.post("/fhir/Observation", json=resource, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["valueInteger"] == 12
    assert _stored_response(api, patient_id)["author_kind"] == "clinician"  # performer is a Practitioner


def test_a_gad7_total_is_taken_by_its_loinc_code(client: TestClient, api: ApiDriver, headers: dict[str, str]) -> None:
    patient_id = api.patient()
    created = client.post(
        "/fhir/Observation", json=total_observation(patient_id, {"valueInteger": 16}, "70274-6"), headers=headers
    )
    assert created.status_code == 201, created.text
    stored = _stored_response(api, patient_id)
    assert (stored["instrument"], stored["score"]["total"], stored["score"]["severity"]) == ("gad-7", 16, "severe")


def test_items_as_components_are_scored_and_item_9_raises_the_urgent_flag(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    scores = [2, 2, 1, 1, 1, 1, 1, 1, 2]
    resource = total_observation(patient_id, {"valueInteger": 12}, component=item_components(scores))
    created = client.post("/fhir/Observation", json=resource, headers=headers)
    assert created.status_code == 201, created.text
    stored = _stored_response(api, patient_id)
    score = stored["score"]
    assert (score["total"], score["items_reported"], score["total_mismatch"]) == (12, True, False)
    assert [f["link_id"] for f in score["safety_findings"]] == ["/44260-8"]
    reasons = {r["code"]: r for r in _status(api, patient_id)["reasons"]}
    assert reasons["phq9_item9_positive"]["severity"] == "urgent"
    assert "phq9_item9_not_reported" not in reasons


def test_a_total_only_phq9_says_item_9_was_not_reported(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    created = client.post(
        "/fhir/Observation", json=total_observation(patient_id, {"valueInteger": 14}), headers=headers
    )
    assert created.status_code == 201, created.text
    status = _status(api, patient_id)
    [reason] = [r for r in status["reasons"] if r["code"] == "phq9_item9_not_reported"]
    assert reason["severity"] == "warning"
    assert "sent as a total only: item 9 (thoughts of self-harm) was not reported" in reason["message"]
    assert "screen for suicidality" in reason["message"]
    assert "phq9_item9_positive" not in {r["code"] for r in status["reasons"]}
    assert status["status"] == "needs_attention"


def _panel_bundle(patient_id: str, kind: str, scores: list[int]) -> dict[str, Any]:
    """The US Core PHQ-9 panel with its members beside it, named as the panel names them."""
    panel = about(load_fixture(US_CORE_PANEL), patient_id)
    total = about(load_fixture(US_CORE_TOTAL), patient_id)
    total["valueString"] = str(sum(scores))
    members = []
    for code, score in zip(PHQ9_ITEMS, scores, strict=True):
        member = copy.deepcopy(total)
        member |= {"id": f"PHQ9-item-example-{code}", "code": {"coding": [{"system": LOINC, "code": code}]}}
        del member["valueString"]
        member["valueCodeableConcept"] = {"coding": [{"system": LOINC, "code": LL358_3[score]}]}
        members.append(member)
    panel["hasMember"] = [{"reference": f"Observation/{m['id']}"} for m in [*members, total]]
    entries = [panel, *members, total]
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": f"https://ehr.example.org/fhir/Observation/{resource['id']}",
                "resource": resource,
                "request": {"method": "POST", "url": "Observation"},
            }
            for resource in entries
        ],
    }


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_a_us_core_panel_with_its_members_in_a_bundle_is_one_scored_response(
    client: TestClient, api: ApiDriver, headers: dict[str, str], kind: str
) -> None:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    scores = [1, 1, 1, 1, 1, 1, 1, 1, 1]
    answered = client.post("/fhir", json=_panel_bundle(patient_id, kind, scores), headers=headers)
    assert answered.status_code == 200, answered.text
    entries = answered.json()["entry"]
    assert entries[0]["response"]["status"].startswith("201"), entries[0]
    location = entries[0]["response"]["location"]
    assert all(e["response"]["location"] == location for e in entries), entries
    assert all(e["response"]["status"].startswith("200") for e in entries[1:])
    stored = _stored_response(api, patient_id)
    assert (stored["score"]["total"], stored["score"]["items_reported"], len(stored["answers"])) == (9, True, 9)
    assert "phq9_item9_positive" in {r["code"] for r in _status(api, patient_id)["reasons"]}
    read = client.get(f"/fhir/{'/'.join(location.split('/')[:2])}", headers=headers)
    assert read.status_code == 200 and read.json()["valueInteger"] == 9


def test_a_panel_sent_alone_is_refused_with_the_way_to_send_it(
    client: TestClient, api: ApiDriver, headers: dict[str, str], engine: Engine
) -> None:
    patient_id = api.patient()
    before = database_checksum(engine, exclude={"audit_events"})
    refused = client.post("/fhir/Observation", json=about(load_fixture(US_CORE_PANEL), patient_id), headers=headers)
    assert refused.status_code == 422, refused.text
    issue = refused.json()["issue"][0]
    assert issue["expression"] == ["Observation.hasMember"]
    assert "same transaction or batch Bundle" in issue["diagnostics"]
    assert database_checksum(engine, exclude={"audit_events"}) == before


@pytest.mark.parametrize(
    ("change", "element", "says"),
    [
        ({"valueInteger": None}, "Observation.value[x]", "needs its total"),
        ({"valueInteger": None, "valueString": "moderate"}, "Observation.valueString", "is not a number"),
        (
            {"valueInteger": None, "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA6570-1"}]}},
            "Observation.valueCodeableConcept",
            "a coded value is not a number",
        ),
        ({"valueInteger": 28}, "Observation.valueInteger", "outside its range 0-27"),
        (
            {"valueInteger": None, "valueQuantity": {"value": 12, "unit": "mm[Hg]"}},
            "Observation.valueQuantity.code",
            "not a score",
        ),
        (
            {"code": {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679", "code": "3049"}]}},
            "Observation.code",
            "LOINC 44261-6 PHQ-9",
        ),
        ({"status": "cancelled"}, "Observation.status", "holds no usable score"),
        ({"component": item_components([1] * 9)[:3]}, "Observation.component", "44260-8"),
    ],
    ids=[
        "no-value",
        "non-numeric-string",
        "coded-value",
        "out-of-range",
        "unit",
        "unknown-code",
        "status",
        "partial-items",
    ],
)
def test_bad_score_observations_are_refused_by_element_and_store_nothing(
    client: TestClient,
    api: ApiDriver,
    headers: dict[str, str],
    engine: Engine,
    change: dict[str, Any],
    element: str,
    says: str,
) -> None:
    patient_id = api.patient()
    resource = {
        k: v for k, v in (total_observation(patient_id, {"valueInteger": 12}) | change).items() if v is not None
    }
    before = database_checksum(engine, exclude={"audit_events"})
    refused = client.post("/fhir/Observation", json=resource, headers=headers)
    assert refused.status_code == 422, refused.text
    issue = refused.json()["issue"][0]
    assert issue["expression"] == [element], issue
    assert says in issue["diagnostics"], issue
    assert database_checksum(engine, exclude={"audit_events"}) == before


def test_another_category_is_refused_and_an_observation_is_create_only(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id = api.patient()
    # Vital signs have their own branch (tests/fhir/test_vital_signs.py); a laboratory result has none.
    lab = total_observation(
        patient_id,
        {"valueQuantity": {"value": 5.4, "unit": "mmol/L"}},
        "2345-7",
        category=[{"coding": [{"system": SURVEY["coding"][0]["system"], "code": "laboratory"}]}],
    )
    refused = client.post("/fhir/Observation", json=lab, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["issue"][0]["expression"] == ["Observation.category"]
    assert "survey" in refused.json()["issue"][0]["diagnostics"]
    assert "vital-signs" in refused.json()["issue"][0]["diagnostics"]
    created = client.post("/fhir/Observation", json=total_observation(patient_id, {"valueInteger": 3}), headers=headers)
    observation = created.json()
    put = client.put(f"/fhir/Observation/{observation['id']}", json=observation, headers=headers)
    assert put.status_code == 405, put.text


# ---- a site's own code, through the target's code map ------------------------------------------------------

EHR = "https://93.184.216.34/fhir"  # a public address literal: nothing is sent to it
EPIC_FLOWSHEET = "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679"  # an example site code system (an Epic-style OID)


def test_a_site_code_is_refused_then_taken_once_an_admin_maps_it(
    client: TestClient, api: ApiDriver, headers: dict[str, str], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    patient_id = api.patient()
    admin = auth(tenant, "admin")
    flowsheet_row = total_observation(patient_id, {"valueString": "17"})
    flowsheet_row["code"] = {"coding": [{"system": EPIC_FLOWSHEET, "code": "3049", "display": "PHQ-9 Score"}]}
    del flowsheet_row["category"]  # flowsheet rows often come without one
    refused = client.post("/fhir/Observation", json=flowsheet_row, headers=headers)
    assert refused.status_code == 422, refused.text
    issue = refused.json()["issue"][0]
    assert issue["expression"] == ["Observation.category"]
    assert "LOINC 44261-6 PHQ-9" in issue["diagnostics"] and "code_map" in issue["diagnostics"]

    target = client.post(
        f"{API}/sync/targets", json={"name": "Epic", "base_url": "https://93.184.216.34/fhir"}, headers=admin
    )
    assert target.status_code == 201, target.text
    mapped = client.patch(
        f"{API}/sync/targets/{target.json()['id']}",
        json={"code_map": {f"{LOINC}|44261-6": [{"system": EPIC_FLOWSHEET, "code": "3049"}]}},
        headers={**admin, "If-Match": 'W/"1"'},
    )
    assert mapped.status_code == 200, mapped.text

    created = client.post("/fhir/Observation", json=flowsheet_row, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["valueInteger"] == 17
    stored = _stored_response(api, patient_id)
    assert (stored["instrument"], stored["score"]["total"], stored["score"]["items_reported"]) == ("phq-9", 17, False)


@pytest.mark.parametrize(
    ("code_map", "says"),
    [
        ({"44261-6": [{"system": EPIC_FLOWSHEET, "code": "3049"}]}, "entry '44261-6': the key must be 'system|code'"),
        ({f"{LOINC}|44261-6": [{"code": "3049"}]}, "coding 0: system None is not a URI"),
        ({f"{LOINC}|44261-6": [{"system": "Epic flowsheet", "code": "3049"}]}, "system 'Epic flowsheet' is not a URI"),
        ({f"{LOINC}|": [{"system": EPIC_FLOWSHEET, "code": "3049"}]}, "the key must be 'system|code'"),
    ],
    ids=["key-without-system", "coding-without-system", "system-not-a-uri", "key-without-code"],
)
def test_an_unusable_code_map_entry_is_refused_naming_it(
    client: TestClient,
    tenant: str,
    auth: Callable[..., dict[str, str]],
    engine: Engine,
    code_map: dict[str, Any],
    says: str,
) -> None:
    admin = auth(tenant, "admin")
    before = database_checksum(engine, exclude={"audit_events"})
    refused = client.post(
        f"{API}/sync/targets",
        json={"name": "Epic", "base_url": "https://93.184.216.34/fhir", "code_map": code_map},
        headers=admin,
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    [error] = refused.json()["errors"]
    assert error["field"] == "code_map" and says in error["message"], error
    assert database_checksum(engine, exclude={"audit_events"}) == before


def test_a_questionnaire_response_holding_only_the_total_is_scored_total_only(
    client: TestClient, api: ApiDriver, headers: dict[str, str]
) -> None:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    response = about(load_fixture("fhir/uscore7-QuestionnaireResponse-phq-9-example.json"), patient_id)
    response["item"] = [item for item in response["item"] if item["linkId"] == "/44261-6"]  # valueDecimal 12
    created = client.post("/fhir/QuestionnaireResponse", json=response, headers=headers)
    assert created.status_code == 201, created.text
    score = _stored_response(api, patient_id)["score"]
    assert (score["total"], score["severity"], score["items_reported"]) == (12, "moderate", False)
    assert "phq9_item9_not_reported" in {r["code"] for r in _status(api, patient_id)["reasons"]}
    # Read back with the total in the item it came in.
    read = client.get(f"/fhir/QuestionnaireResponse/{created.json()['id']}", headers=headers).json()
    assert [i["linkId"] for i in read["item"]] == ["/44261-6"]


def test_the_capability_statement_declares_observation_create_and_its_writable_categories(
    client: TestClient,
) -> None:
    statement = client.get("/fhir/metadata").json()
    [observation] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Observation"]
    assert {i["code"] for i in observation["interaction"]} == {
        "read",
        "vread",
        "history-instance",
        "search-type",
        "create",
    }
    assert "category survey: instrument total scores by LOINC (44261-6 PHQ-9" in observation["documentation"]
