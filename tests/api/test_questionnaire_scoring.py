"""Questionnaire responses are scored on write, from our JSON shape or from real FHIR QuestionnaireResponses."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.builders import API, PHQ9_ITEMS, PHQ9_LOINC, ApiDriver, questionnaire_body
from tests.db_snapshot import database_checksum
from tests.instruments.builders import LL358_3, coded_item, response
from tests.instruments.test_external import LHC, LHC_CANONICAL, SDC, SDC_CODES, SDC_LINK_IDS, SDC_SYSTEM
from tests.shared_fixtures import load_fixture

FHIR = {"Content-Type": "application/fhir+json"}
US_CORE_QR = "fhir/uscore7-QuestionnaireResponse-phq-9-example.json"
CSSRS_QR = "fhir/onc-bhp-QuestionnaireResponse-C-SSRS-example-1.json"
GAD7 = "fhir/uwcirg-asbi-Questionnaire-GAD7.json"


@pytest.fixture
def api(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> ApiDriver:
    return ApiDriver(client, auth(tenant, "ehr-system"))


def _about(resource: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """A copy of a published example, pointed at one of our patients (the fixture file is never changed)."""
    mine = copy.deepcopy(resource)
    mine["subject"] = {"reference": f"Patient/{patient_id}"}
    return mine


def _post_fhir(api: ApiDriver, resource: dict[str, Any]) -> Any:
    return api.client.post(
        f"{API}/questionnaire-responses", content=json.dumps(resource), headers={**api.headers, **FHIR}
    )


def test_us_core_phq9_scores_12_with_item_9_zero(api: ApiDriver) -> None:
    response = _post_fhir(api, _about(load_fixture(US_CORE_QR), api.patient()))
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["instrument"] == "phq-9"
    assert stored["score"]["total"] == 12
    assert stored["score"]["severity"] == "moderate"
    assert stored["score"]["complete"] is True
    assert stored["score"]["item_scores"]["/44260-8"] == 0
    assert stored["score"]["safety_findings"] == []
    assert (stored["sent_total"], stored["score"]["total_mismatch"]) == (12, False)
    assert stored["authored_at"].endswith("Z")


def test_a_disagreeing_sent_total_is_kept_and_flagged(api: ApiDriver) -> None:
    resource = _about(load_fixture(US_CORE_QR), api.patient())
    total_item = next(i for i in resource["item"] if i["linkId"] == "/44261-6")
    total_item["answer"] = [{"valueDecimal": 14}]
    stored = _post_fhir(api, resource).json()
    assert (stored["sent_total"], stored["score"]["total"], stored["score"]["total_mismatch"]) == (14, 12, True)


def test_cssrs_example_is_scored_without_high_risk(api: ApiDriver) -> None:
    response = _post_fhir(api, _about(load_fixture(CSSRS_QR), api.patient()))
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["instrument"] == "c-ssrs-screener"
    assert stored["score"]["safety_findings"] == []


def test_cssrs_recent_behaviour_is_a_safety_finding(api: ApiDriver) -> None:
    resource = _about(load_fixture(CSSRS_QR), api.patient())
    yes = {"system": "http://loinc.org", "code": "LA33-6", "display": "Yes"}
    for item in _walk(resource["item"]):
        if item["linkId"].endswith(("93267-3", "93269-9")):
            item["answer"] = [{"valueCoding": yes}]
    stored = _post_fhir(api, resource).json()
    assert [f["link_id"] for f in stored["score"]["safety_findings"]] == ["/93269-9"]


def _walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found.append(item)
        found.extend(_walk(item.get("item", [])))
    return found


def test_gad7_scores_by_ordinal_not_answer_code(api: ApiDriver) -> None:
    gad7 = load_fixture(GAD7)
    items = [
        coded_item(i["linkId"], "LA18938-3" if i["linkId"].endswith("68509-9") else "LA6568-5")
        for i in gad7["item"]
        if i["linkId"].endswith(tuple("0123456789")) and i.get("answerOption")
    ]
    # The uwcirg Questionnaire has no url; its LOINC linkIds say what it is, and its codes carry no system.
    resource = response(items, None, subject={"reference": f"Patient/{api.patient()}"}, authored="2026-10-06T08:30:00Z")
    stored = _post_fhir(api, resource)
    assert stored.status_code == 201, stored.text
    score = stored.json()["score"]
    assert score["item_scores"]["/68509-9"] == 2
    assert score["total"] == 2


def test_registered_sdc_phq9_is_scored_through_its_own_codes(api: ApiDriver) -> None:
    registration = {"instrument": "phq-9", "questionnaire": load_fixture(SDC), "link_ids": SDC_LINK_IDS}
    registered = api.client.post(f"{API}/questionnaires", json=registration, headers=api.headers)
    assert registered.status_code == 201, registered.text
    scores = [3, 2, 1, 0, 1, 2, 3, 0, 1]
    questions = [coded_item(f"H1/T1/Q{n}", SDC_CODES[s], SDC_SYSTEM) for n, s in enumerate(scores, start=1)]
    resource = response(
        [{"linkId": "H1/T1", "item": questions}],
        registered.json()["canonical"],
        subject={"reference": f"Patient/{api.patient()}"},
        authored="2026-10-06T08:30:00Z",
    )
    stored = _post_fhir(api, resource)
    assert stored.status_code == 201, stored.text
    assert stored.json()["score"]["total"] == sum(scores)
    assert [f["link_id"] for f in stored.json()["score"]["safety_findings"]] == ["/44260-8"]
    again = api.client.post(f"{API}/questionnaires", json=registration, headers=api.headers)
    assert again.status_code == 409


def test_registered_lhc_forms_phq9_is_scored(api: ApiDriver) -> None:
    registration = {"instrument": "phq-9", "questionnaire": load_fixture(LHC), "canonical": LHC_CANONICAL}
    assert api.client.post(f"{API}/questionnaires", json=registration, headers=api.headers).status_code == 201
    scores = [1, 1, 1, 1, 1, 1, 1, 1, 0]
    items = [coded_item(f"/{code}", LL358_3[s], "http://loinc.org") for code, s in zip(PHQ9_LOINC, scores, strict=True)]
    resource = response(
        items, LHC_CANONICAL, subject={"reference": f"Patient/{api.patient()}"}, authored="2026-10-06T08:30:00Z"
    )
    stored = _post_fhir(api, resource)
    assert stored.status_code == 201, stored.text
    assert stored.json()["score"]["total"] == 8
    listed = api.client.get(f"{API}/questionnaires", headers=api.headers).json()
    assert [q["canonical"] for q in listed] == [LHC_CANONICAL]


def test_registration_is_for_admins_and_ehr_systems(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    registration = {"instrument": "phq-9", "questionnaire": load_fixture(LHC), "canonical": LHC_CANONICAL}
    refused = client.post(f"{API}/questionnaires", json=registration, headers=auth(tenant, "coordinator"))
    assert refused.status_code == 403


def test_bad_registration_names_the_problem(api: ApiDriver) -> None:
    registration = {"instrument": "phq-10", "questionnaire": load_fixture(LHC), "canonical": LHC_CANONICAL}
    response = api.client.post(f"{API}/questionnaires", json=registration, headers=api.headers)
    assert response.status_code == 422
    assert "unknown instrument" in response.json()["detail"]


# ---- bad FHIR input: an OperationOutcome naming the item, and nothing stored -----------------------------------


def _unknown_code(resource: dict[str, Any]) -> dict[str, Any]:
    resource["item"][0]["answer"] = [{"valueCoding": {"system": "http://loinc.org", "code": "LA9999-9"}}]
    return resource


def _out_of_range(resource: dict[str, Any]) -> dict[str, Any]:
    resource["item"][0]["answer"] = [{"valueInteger": 7}]
    return resource


def _duplicate_link_id(resource: dict[str, Any]) -> dict[str, Any]:
    resource["item"].append(copy.deepcopy(resource["item"][0]))
    return resource


def _unknown_questionnaire(resource: dict[str, Any]) -> dict[str, Any]:
    resource["questionnaire"] = "https://forms.example.org/Questionnaire/mood-check"
    for n, item in enumerate(resource["item"]):
        item["linkId"] = f"q{n}"
        item.pop("code", None)
    return resource


def _wrong_type(resource: dict[str, Any]) -> dict[str, Any]:
    resource["resourceType"] = "Observation"
    return resource


def _unknown_patient(resource: dict[str, Any]) -> dict[str, Any]:
    resource["subject"] = {"reference": "Patient/not-ours"}
    return resource


BAD_FHIR = {
    "unknown option code": (_unknown_code, "/44250-9"),
    "out-of-range integer": (_out_of_range, "/44250-9"),
    "duplicate linkId": (_duplicate_link_id, "/44250-9"),
    "unknown questionnaire": (_unknown_questionnaire, "QuestionnaireResponse"),
    "wrong resourceType": (_wrong_type, "resourceType"),
    "unknown patient": (_unknown_patient, "subject"),
}


@pytest.mark.parametrize("case", sorted(BAD_FHIR))
def test_bad_fhir_is_refused_with_an_operation_outcome(api: ApiDriver, engine: Engine, case: str) -> None:
    spoil, named = BAD_FHIR[case]
    resource = spoil(_about(load_fixture(US_CORE_QR), api.patient()))
    before = database_checksum(engine, exclude={"audit_events"})
    response = _post_fhir(api, resource)
    assert response.status_code == 422, (case, response.text)
    assert response.headers["content-type"] == "application/fhir+json"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["severity"] == "error"
    assert named in issue["diagnostics"] + " ".join(issue.get("expression", [])), outcome
    assert database_checksum(engine, exclude={"audit_events"}) == before


def test_five_megabyte_body_is_refused_before_parsing(api: ApiDriver, engine: Engine) -> None:
    resource = _about(load_fixture(US_CORE_QR), api.patient())
    resource["text"] = {"status": "generated", "div": "<div>" + "x" * 5_000_000 + "</div>"}
    before = database_checksum(engine, exclude={"audit_events"})
    response = _post_fhir(api, resource)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"
    assert database_checksum(engine, exclude={"audit_events"}) == before


# ---- our JSON shape ------------------------------------------------------------------------------------------


def test_json_answers_may_name_items_by_loinc_code(api: ApiDriver) -> None:
    body = questionnaire_body(api.patient(), answers=[{"link_id": code, "value_integer": 2} for code in PHQ9_LOINC])
    stored = api.create("questionnaire-responses", body)
    assert [a["link_id"] for a in stored["answers"]] == PHQ9_ITEMS
    assert stored["score"]["total"] == 18
    assert stored["score"]["severity"] == "moderately severe"
    assert [f["link_id"] for f in stored["score"]["safety_findings"]] == ["/44260-8"]


def test_an_incomplete_response_is_stored_but_not_totalled(api: ApiDriver) -> None:
    body = questionnaire_body(api.patient(), answers=[{"link_id": i, "value_integer": 3} for i in PHQ9_ITEMS[:5]])
    stored = api.create("questionnaire-responses", body)
    assert (stored["score"]["total"], stored["score"]["complete"]) == (None, False)
    assert stored["score"]["missing_items"] == PHQ9_ITEMS[5:]


def test_json_answer_outside_the_options_is_refused_by_item(api: ApiDriver) -> None:
    answers = [{"link_id": i, "value_integer": 1} for i in PHQ9_ITEMS]
    answers[3] = {"link_id": PHQ9_ITEMS[3], "value_integer": 4}
    response = api.client.post(
        f"{API}/questionnaire-responses", json=questionnaire_body(api.patient(), answers=answers), headers=api.headers
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "answers.3"


def test_unknown_instrument_is_refused(api: ApiDriver) -> None:
    response = api.client.post(
        f"{API}/questionnaire-responses",
        json=questionnaire_body(api.patient(), instrument="phq-10"),
        headers=api.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "instrument"


def test_a_changed_answer_is_rescored(api: ApiDriver) -> None:
    stored = api.create("questionnaire-responses", questionnaire_body(api.patient()))
    assert stored["score"]["total"] == 9
    answers = [{"link_id": i, "value_integer": 0} for i in PHQ9_ITEMS]
    changed = api.client.patch(
        f"{API}/questionnaire-responses/{stored['id']}",
        json={"answers": answers},
        headers={**api.headers, "If-Match": 'W/"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["score"]["total"] == 0
    assert changed.json()["score"]["safety_findings"] == []


def test_instruments_are_published(api: ApiDriver) -> None:
    listed = api.client.get(f"{API}/instruments", headers=api.headers).json()
    phq9 = next(i for i in listed if i["key"] == "phq-9")
    assert (phq9["panel_loinc"], phq9["total_loinc"], phq9["remission"]) == ("44249-1", "44261-6", "< 5")
    questionnaire = api.client.get(f"{API}/instruments/phq-9", headers=api.headers)
    assert questionnaire.headers["content-type"] == "application/fhir+json"
    assert questionnaire.json()["resourceType"] == "Questionnaire"
    assert api.client.get(f"{API}/instruments/nope", headers=api.headers).status_code == 404
