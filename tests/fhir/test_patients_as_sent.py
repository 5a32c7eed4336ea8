"""Patients as hospitals send them (issue #19, item 6), on SQLite and PostgreSQL: a valid R4 Patient that identifies
a person is taken and served back with what it carried; what was not used is said; the resource as sent is kept
(provenance, read back audited); a Patient that does not identify a person is refused naming the element and
the fix, and nothing is stored."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from service.records.audit import AuditEvent
from service.records.patient import Patient
from service.records.received import ReceivedResource
from tests.builders import API
from tests.fhir.support import fhir_headers
from tests.shared_fixtures import load_fixture

Auth = Callable[..., dict[str, str]]


def _hospital_patient() -> dict[str, Any]:
    """A Patient as an EHR sends it: two names, phone and email, an address, a next of kin, a language, no birth
    date, and elements Tandem does not use (active, managingOrganization, a foreign extension, _gender)."""
    return {
        "resourceType": "Patient",
        "id": "ehr-4471",
        "meta": {"versionId": "3", "lastUpdated": "2026-11-30T10:00:00Z"},
        "extension": [{"url": "http://example.org/fhir/birth-place-text", "valueString": "Leeds"}],
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": "urn:oid:2.16.840.1.113883.3.7418.2",
                "value": f"MRN-{uuid.uuid4().hex[:10]}",
            }
        ],
        "active": True,
        "name": [
            {"use": "official", "family": "Okafor", "given": ["Adaeze", "N"]},
            {"use": "nickname", "given": ["Ada"]},
        ],
        "telecom": [
            {"system": "phone", "value": "+44 113 496 0000", "use": "mobile", "rank": 1},
            {"system": "email", "value": "ada@example.org", "use": "home"},
        ],
        "gender": "female",
        "_gender": {"extension": [{"url": "http://example.org/fhir/sex-at-birth", "valueCode": "F"}]},
        "deceasedBoolean": False,
        "address": [{"use": "home", "line": ["1 Park Row"], "city": "Leeds", "postalCode": "LS1 5HD", "country": "GB"}],
        "contact": [
            {
                "relationship": [
                    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}
                ],
                "name": {"family": "Okafor", "given": ["Chidi"]},
                "telecom": [{"system": "phone", "value": "+44 113 496 0001"}],
            }
        ],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]}, "preferred": True}
        ],
        "managingOrganization": {"display": "Leeds Teaching Hospitals"},
    }


def _counts(engine: Engine, tenant: str) -> tuple[int, int]:
    with Session(engine) as session:
        patients = session.exec(select(func.count()).select_from(Patient).where(col(Patient.tenant_id) == tenant))
        received = session.exec(
            select(func.count()).select_from(ReceivedResource).where(col(ReceivedResource.tenant_id) == tenant)
        )
        return int(patients.one()), int(received.one())


def test_a_hospital_patient_reads_back_with_what_it_carried(client: TestClient, tenant: str, auth: Auth) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    sent = _hospital_patient()
    created = client.post("/fhir/Patient", json=sent, headers=headers)
    assert created.status_code == 201, created.text
    back = client.get(f"/fhir/Patient/{created.json()['id']}", headers=headers).json()
    for element in ("name", "telecom", "address", "contact", "communication", "gender"):
        assert back[element] == sent[element], element
    assert "birthDate" not in back
    assert sent["identifier"][0]["value"] in [i["value"] for i in back["identifier"]]
    # The JSON API shows the same patient: name parts, telecom as sent, alive.
    public = client.get(f"{API}/patients/{created.json()['id']}", headers=auth(tenant)).json()
    assert (public["family_name"], public["given_name"], public["birth_date"]) == ("Okafor", "Adaeze N", None)
    assert public["telecom"] == sent["telecom"] and public["deceased"] is False


def test_what_was_not_used_is_told_as_warnings(client: TestClient, tenant: str, auth: Auth) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"), Prefer="return=OperationOutcome")
    created = client.post("/fhir/Patient", json=_hospital_patient(), headers=headers)
    assert created.status_code == 201, created.text
    outcome = created.json()
    assert outcome["resourceType"] == "OperationOutcome"
    warned = {e for issue in outcome["issue"] if issue["severity"] == "warning" for e in issue["expression"]}
    assert warned == {
        "Patient.extension('http://example.org/fhir/birth-place-text')",
        "Patient.active",
        "Patient.gender.extension",
        "Patient.managingOrganization",
    }


def test_the_resource_as_sent_is_kept_and_read_back_audited(
    client: TestClient, engine: Engine, tenant: str, new_tenant: Callable[[], str], auth: Auth
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system", subject="ehr-interface-3"))
    sent = _hospital_patient()
    patient_id = client.post("/fhir/Patient", json=sent, headers=headers).json()["id"]
    assert client.post("/fhir/Patient", json=sent, headers=headers).status_code == 200  # a resend: kept once
    changed = copy.deepcopy(sent)
    changed["telecom"][0]["value"] = "+44 113 496 0999"
    changed["id"] = patient_id
    current = client.get(f"/fhir/Patient/{patient_id}", headers=headers)
    put = client.put(
        f"/fhir/Patient/{patient_id}", json=changed, headers={**headers, "If-Match": current.headers["etag"]}
    )
    assert put.status_code == 200, put.text

    reader = {**auth(tenant, "clinician"), "X-Request-ID": f"prov-{uuid.uuid4().hex[:8]}"}
    received = client.get(f"{API}/patients/{patient_id}/received", headers=reader)
    assert received.status_code == 200, received.text
    first, second = received.json()
    assert first["resource"] == sent and second["resource"] == changed
    assert first["sender"] == "ehr-interface-3" and first["resource_type"] == "Patient"
    assert "Patient.managingOrganization" in first["unused"]
    with Session(engine) as session:
        [row] = session.exec(select(AuditEvent).where(col(AuditEvent.request_id) == reader["X-Request-ID"])).all()
    assert (row.action, row.record_kind, row.patient_id, row.outcome) == (
        "read",
        "patients/received",
        patient_id,
        "success",
    )
    other = auth(new_tenant(), "clinician")
    assert client.get(f"{API}/patients/{patient_id}/received", headers=other).status_code == 404


def _without(element: str) -> dict[str, Any]:
    patient = _hospital_patient()
    del patient[element]
    return patient


@pytest.mark.parametrize(
    "identifiers", [None, [{"system": "urn:oid:1.2.3"}]], ids=["no identifier", "identifier without value"]
)
def test_a_patient_without_an_identifier_is_taken_and_known_by_our_id(
    client: TestClient, engine: Engine, tenant: str, auth: Auth, identifiers: list[dict[str, str]] | None
) -> None:
    """R4 allows Patient.identifier 0..*: the sender chose to create, so the patient is taken, matched to no MRN,
    and read back under the identifier Tandem gives it (the sender's absence of one is kept in the received copy)."""
    patient = _without("identifier") if identifiers is None else _hospital_patient() | {"identifier": identifiers}
    headers = fhir_headers(auth(tenant, "ehr-system"))
    before = _counts(engine, tenant)
    created = client.post("/fhir/Patient", json=patient, headers=headers)
    assert created.status_code == 201, created.text
    assert _counts(engine, tenant) == (before[0] + 1, before[1] + 1)
    read = client.get(f"/fhir/Patient/{created.json()['id']}", headers=headers).json()
    assert [i["value"] for i in read["identifier"]] == [created.json()["id"]]
    assert read["name"] == patient["name"]


@pytest.mark.parametrize(
    ("patient", "expression", "fix"),
    [
        (_without("name"), "Patient.name", "family or given"),
        (_hospital_patient() | {"name": [{"use": "official"}]}, "Patient.name", "family or given"),
        (_hospital_patient() | {"gender": "F"}, "Patient.gender", "female, male, other or unknown"),
        (_hospital_patient() | {"deceasedDateTime": "2999-01-01"}, "Patient.deceasedDateTime", "when the patient died"),
        (
            _hospital_patient() | {"telecom": [{"system": "phone", "value": 441134960000}]},
            "Patient.telecom[0].value",
            "R4",
        ),
        (_hospital_patient() | {"birthDate": "1984"}, "Patient.birthDate", "YYYY-MM-DD"),
    ],
    ids=[
        "no name",
        "empty name",
        "invalid gender",
        "death in future",
        "telecom of the wrong type",
        "partial birth date",
    ],
)
def test_a_patient_that_does_not_identify_a_person_is_refused_and_nothing_stored(
    client: TestClient, engine: Engine, tenant: str, auth: Auth, patient: dict[str, Any], expression: str, fix: str
) -> None:
    before = _counts(engine, tenant)
    refused = client.post("/fhir/Patient", json=patient, headers=fhir_headers(auth(tenant, "ehr-system")))
    assert refused.status_code in (400, 422), refused.text
    [issue] = refused.json()["issue"]
    assert issue["severity"] == "error" and issue["expression"] == [expression]
    assert fix in issue["diagnostics"]
    assert _counts(engine, tenant) == before


def test_a_deceased_date_in_the_future_is_refused_on_the_json_api_too(
    client: TestClient, engine: Engine, tenant: str, auth: Auth
) -> None:
    before = _counts(engine, tenant)
    body = {
        "identifiers": [{"system": "urn:oid:1.2.3", "value": f"M-{uuid.uuid4().hex[:8]}"}],
        "name_text": "张无忌",
        "sex": "male",
        "deceased_at": "2999-02-14T13:42:00+10:00",
    }
    refused = client.post(f"{API}/patients", json=body, headers=auth(tenant))
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["deceased_at"]
    assert _counts(engine, tenant) == before
    accepted = client.post(
        f"{API}/patients", json=body | {"deceased_at": "2015-02-14T13:42:00+10:00"}, headers=auth(tenant)
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["deceased"] is True  # a date of death says the patient died
    served = client.get(f"/fhir/Patient/{accepted.json()['id']}", headers=fhir_headers(auth(tenant))).json()
    assert served["name"] == [{"use": "official", "text": "张无忌"}]
    assert served["deceasedDateTime"] == "2015-02-14T13:42:00+10:00"


def test_a_questionnaire_responses_identifier_stays_in_identifier_and_is_searchable(
    client: TestClient, tenant: str, auth: Auth
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    patient_id = client.post("/fhir/Patient", json=_hospital_patient(), headers=headers).json()["id"]
    sent = load_fixture("fhir/uscore7-QuestionnaireResponse-phq-9-example.json")
    sent = {**sent, "subject": {"reference": f"Patient/{patient_id}"}, "author": None}
    sent = {k: v for k, v in sent.items() if v is not None}
    their = {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268", "value": f"QR-{uuid.uuid4().hex[:8]}"}
    created = client.post("/fhir/QuestionnaireResponse", json={**sent, "identifier": their}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["identifier"] == their
    found = client.get(
        "/fhir/QuestionnaireResponse", params={"identifier": f"{their['system']}|{their['value']}"}, headers=headers
    ).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [created.json()["id"]]
