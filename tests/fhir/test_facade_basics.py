"""The FHIR facade: metadata, create, read, vread, history, search, update with ETags, formats, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_mappings.codes import RXNORM, RXNORM_ESKETAMINE, RXNORM_KETAMINE
from tests.builders import ApiDriver, administration_body
from tests.fhir.support import about, fhir_headers, patient_resource
from tests.shared_fixtures import load_fixture

US_CORE_QR = "fhir/uscore7-QuestionnaireResponse-phq-9-example.json"


@pytest.fixture
def headers(tenant: str, auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return fhir_headers(auth(tenant, "ehr-system"))


def _create_patient(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/fhir/Patient", json=patient_resource(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_metadata_is_a_public_r4_capability_statement(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert (statement["resourceType"], statement["fhirVersion"]) == ("CapabilityStatement", "4.0.1")
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Patient", "MedicationAdministration", "QuestionnaireResponse", "Observation", "CarePlan"} <= types


def test_create_read_and_etag(client: TestClient, headers: dict[str, str]) -> None:
    created = client.post("/fhir/Patient", json=patient_resource(), headers=headers)
    assert created.status_code == 201, created.text
    patient = created.json()
    assert created.headers["etag"] == 'W/"1"'
    assert created.headers["location"].endswith(f"/fhir/Patient/{patient['id']}/_history/1")
    assert created.headers["location"].startswith("http")
    read = client.get(f"/fhir/Patient/{patient['id']}", headers=headers)
    assert read.status_code == 200
    assert read.headers["content-type"].startswith("application/fhir+json")
    assert read.json()["name"][0]["family"] == "Okonkwo"
    assert read.headers["last-modified"]
    not_modified = client.get(f"/fhir/Patient/{patient['id']}", headers={**headers, "If-None-Match": 'W/"1"'})
    assert not_modified.status_code == 304


def test_update_with_if_match_and_stale_412(client: TestClient, headers: dict[str, str]) -> None:
    patient = _create_patient(client, headers)
    changed = {**patient, "name": [{"family": "Okonkwo-Reid", "given": ["Ada"]}]}
    updated = client.put(f"/fhir/Patient/{patient['id']}", json=changed, headers={**headers, "If-Match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"'
    stale = client.put(f"/fhir/Patient/{patient['id']}", json=changed, headers={**headers, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    first = client.get(f"/fhir/Patient/{patient['id']}/_history/1", headers=headers)
    assert first.json()["name"][0]["family"] == "Okonkwo"
    history = client.get(f"/fhir/Patient/{patient['id']}/_history", headers=headers).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


def test_a_questionnaire_response_is_scored_and_published_with_its_score(
    client: TestClient, headers: dict[str, str]
) -> None:
    patient = _create_patient(client, headers)
    response = client.post(
        "/fhir/QuestionnaireResponse", json=about(load_fixture(US_CORE_QR), patient["id"]), headers=headers
    )
    assert response.status_code == 201, response.text
    scores = client.get(
        "/fhir/Observation", params={"patient": patient["id"], "code": "http://loinc.org|44261-6"}, headers=headers
    ).json()
    assert scores["total"] == 1
    assert scores["entry"][0]["resource"]["valueInteger"] == 12


def test_search_pages_with_absolute_next_links(client: TestClient, headers: dict[str, str]) -> None:
    ids = {_create_patient(client, headers, name=[{"family": "Pager"}])["id"] for _ in range(5)}
    seen: set[str] = set()
    url: str | None = "/fhir/Patient?_count=2"
    while url:
        bundle = client.get(url, headers=headers).json()
        assert bundle["type"] == "searchset"
        seen |= {e["resource"]["id"] for e in bundle.get("entry", [])}
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        assert url is None or url.startswith("http")
    assert ids <= seen


def test_bundle_total_is_given_when_free_or_asked_for(
    client: TestClient, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(new_tenant(), "ehr-system"))
    for _ in range(5):
        _create_patient(client, headers)

    def get(**params: Any) -> dict[str, Any]:
        response = client.get("/fhir/Patient", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def relations(bundle: dict[str, Any]) -> set[str]:
        return {link["relation"] for link in bundle["link"]}

    first = get(_count=2)
    assert "total" not in first and relations(first) == {"self", "next"} and len(first["entry"]) == 2
    middle = get(_count=2, _offset=2)
    assert "total" not in middle and relations(middle) == {"self", "next", "previous"}
    last = get(_count=2, _offset=4)  # the last page shows the total
    assert last["total"] == 5 and relations(last) == {"self", "previous"} and len(last["entry"]) == 1
    exactly_full = get(_count=5)
    assert exactly_full["total"] == 5 and relations(exactly_full) == {"self"}
    assert get(_count=2, _total="accurate")["total"] == 5
    assert get(_count=2, _total="estimate").get("total") is None
    assert "total" not in get(_total="none")
    assert get(_summary="count")["total"] == 5
    beyond = get(_count=2, _offset=10)  # past the end: nothing to count from
    assert "total" not in beyond and "entry" not in beyond and relations(beyond) == {"self", "previous"}
    next_url = next(link["url"] for link in get(_count=2, _total="accurate")["link"] if link["relation"] == "next")
    assert "_total=accurate" in next_url  # the choice carries over to the next page
    assert client.get("/fhir/Patient", params={"_total": "some"}, headers=headers).status_code == 400


def test_next_links_page_from_where_the_last_page_ended(
    client: TestClient, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(new_tenant(), "ehr-system"))
    created = {_create_patient(client, headers)["id"] for _ in range(5)}

    def walk(url: str, **first: Any) -> tuple[list[str], list[dict[str, Any]]]:
        ids, pages = [], []
        params: dict[str, Any] | None = first
        while url:
            response = client.get(url, params=params, headers=headers)  # a link is followed as given
            assert response.status_code == 200, response.text
            page = response.json()
            pages.append(page)
            ids += [entry["resource"]["id"] for entry in page.get("entry", [])]
            url, params = next((link["url"] for link in page["link"] if link["relation"] == "next"), ""), None
        return ids, pages

    for sort in ("", "_lastUpdated", "-_lastUpdated"):
        ids, pages = walk("/fhir/Patient", _count=2, **({"_sort": sort} if sort else {}))
        assert sorted(ids) == sorted(created) and len(ids) == 5 and len(pages) == 3
        nexts = [link["url"] for page in pages for link in page["link"] if link["relation"] == "next"]
        assert all("_cursor=" in url and "_offset=" not in url and url.count("_count=") == 1 for url in nexts)
        assert all(f"_sort={sort}" in url for url in nexts) if sort else True
        assert pages[-1]["total"] == 5  # the last page still counts, from the cursor's position
        assert {link["relation"] for link in pages[-1]["link"]} == {"self", "previous"}
    ids, pages = walk("/fhir/Patient", _count=2, _sort="-_lastUpdated")
    assert ids == list(reversed(walk("/fhir/Patient", _count=2, _sort="_lastUpdated")[0]))
    dated = client.get("/fhir/Observation", params={"_count": 1, "_sort": "date"}, headers=headers).json()
    assert all("_cursor" not in link["url"] for link in dated["link"])  # date sorts page by _offset

    cursor = next(link["url"] for link in pages[0]["link"] if link["relation"] == "next").split("_cursor=")[1]
    for params, why in (
        ({"_cursor": "not-a-cursor"}, "not a cursor of this server"),
        ({"_cursor": cursor, "_sort": "_lastUpdated"}, "another _sort"),  # made for -_lastUpdated
    ):
        refused = client.get("/fhir/Patient", params=params, headers=headers)
        assert refused.status_code == 400, refused.text
        outcome = refused.json()
        assert outcome["resourceType"] == "OperationOutcome" and why in json.dumps(outcome), outcome


def test_unknown_parameters_are_refused_in_every_handling_mode(client: TestClient, headers: dict[str, str]) -> None:
    """Ignoring one would widen the result (security.md §6.5)."""
    for prefer in ("handling=lenient", "handling=strict"):
        refused = client.get("/fhir/Patient", params={"shoe-size": "44"}, headers={**headers, "Prefer": prefer})
        assert refused.status_code == 400
        assert "shoe-size" in refused.text


def test_xml_in_and_out(client: TestClient, headers: dict[str, str]) -> None:
    xml = (
        b'<Patient xmlns="http://hl7.org/fhir"><identifier><system value="urn:oid:1.2.3"/><value value="X-1"/>'
        b'</identifier><name><family value="Xmlson"/></name>'
        b'<gender value="male"/><birthDate value="1990-02-03"/></Patient>'
    )
    created = client.post(
        "/fhir/Patient",
        content=xml,
        headers={**headers, "Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/fhir+xml")
    assert b"Xmlson" in created.content


def test_unacceptable_format_gets_406(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/fhir/Patient", headers={**headers, "Accept": "text/csv"})
    assert response.status_code == 406
    assert response.json()["resourceType"] == "OperationOutcome"


def test_errors_are_operation_outcomes(client: TestClient, headers: dict[str, str]) -> None:
    missing = client.get("/fhir/Patient/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    unknown_type = client.get("/fhir/Spaceship", headers=headers)
    assert unknown_type.status_code == 404
    wrong_type = client.post("/fhir/Patient", json={"resourceType": "Observation"}, headers=headers)
    assert wrong_type.status_code == 422
    derived = client.post("/fhir/Procedure", json={"resourceType": "Procedure", "status": "completed"}, headers=headers)
    assert derived.status_code == 405
    not_a_score = client.post(
        "/fhir/Observation",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        headers=headers,
    )
    assert not_a_score.status_code == 422
    assert not_a_score.json()["issue"][0]["expression"] == ["Observation.category"]
    no_token = client.get("/fhir/Patient")
    assert no_token.status_code == 401
    assert no_token.json()["resourceType"] == "OperationOutcome"


def test_administrations_are_searched_by_the_drug_given(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]], headers: dict[str, str]
) -> None:
    """R4's MedicationAdministration `code` is medication.as(CodeableConcept): a ketamine search finds ketamine."""
    api = ApiDriver(client, auth(tenant))
    patient_id = api.patient()
    ketamine = api.create("ketamine-administrations", administration_body(patient_id))["id"]
    esketamine_body = administration_body(
        patient_id, drug="esketamine", route="intranasal", dose_mg=56, dose_mg_per_kg=None, body_weight_kg=None
    )
    esketamine = api.create("ketamine-administrations", esketamine_body)["id"]

    def found(code: str) -> set[str]:
        response = client.get(
            f"/fhir/MedicationAdministration?subject=Patient/{patient_id}&code={code}", headers=headers
        )
        assert response.status_code == 200, response.text
        return {e["resource"]["id"] for e in response.json().get("entry", [])}

    assert found(f"{RXNORM}|{RXNORM_KETAMINE}") == {ketamine}
    assert found(RXNORM_ESKETAMINE) == {esketamine}
    assert found(f"http://snomed.info/sct|{RXNORM_KETAMINE}") == set()
