"""A patient's contact in the JSON API: sent as FHIR telecom, address and communication (JSON API or /fhir),
read back as `contact` — phones, e-mail, address, preferred channel and language — and on the patient page
(issue #21, item 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.builders import API, ApiDriver, patient_body
from tests.fhir.support import patient_resource

TELECOM = [
    {"system": "phone", "value": "+1 608 555 0100", "use": "home", "rank": 2},
    {"system": "sms", "value": "+1 608 555 0143", "use": "mobile", "rank": 1},
    {"system": "email", "value": "dana@example.org"},
]
ADDRESS = [{"use": "home", "line": ["12 Lake St"], "city": "Madison", "state": "WI", "postalCode": "53703"}]
LANGUAGES = [
    {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es", "display": "Spanish"}]}, "preferred": True}
]
EXPECTED: dict[str, Any] = {
    "phones": [{"number": "+1 608 555 0143", "use": "mobile"}, {"number": "+1 608 555 0100", "use": "home"}],
    "email": "dana@example.org",
    "address": "12 Lake St, Madison, WI, 53703",
    "preferred_channel": "text message",
    "language": "Spanish",
}


def test_the_json_api_reads_the_contact_from_what_was_sent(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    created = api.create("patients", patient_body(telecom=TELECOM, addresses=ADDRESS, communication=LANGUAGES))
    assert created["contact"] == EXPECTED
    read = client.get(f"{API}/patients/{created['id']}", headers=api.headers).json()
    assert read["contact"] == EXPECTED
    # The contact is read-only: it follows telecom, which a PATCH changes.
    moved = client.patch(
        f"{API}/patients/{created['id']}",
        json={"telecom": [{"system": "email", "value": "new@example.org", "rank": 1}]},
        headers={**api.headers, "If-Match": f'W/"{created["version"]}"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["contact"]["phones"] == [] and moved.json()["contact"]["preferred_channel"] == "e-mail"
    refused = client.patch(
        f"{API}/patients/{created['id']}",
        json={"contact": EXPECTED},
        headers={**api.headers, "If-Match": 'W/"2"'},
    )
    assert refused.status_code == 422 and "contact" in refused.text


def test_a_fhir_patient_s_telecom_address_and_communication_become_its_contact(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth(tenant, "ehr-system")
    sent = patient_resource(telecom=TELECOM, address=ADDRESS, communication=LANGUAGES)
    created = client.post("/fhir/Patient", json=sent, headers=headers)
    assert created.status_code == 201, created.text
    patient_id = created.json()["id"]
    assert client.get(f"{API}/patients/{patient_id}", headers=headers).json()["contact"] == EXPECTED
    served = client.get(f"/fhir/Patient/{patient_id}", headers=headers).json()
    assert (served["telecom"], served["address"], served["communication"]) == (TELECOM, ADDRESS, LANGUAGES)


TIME_ZONE = "http://hl7.org/fhir/StructureDefinition/timezone"


def test_a_patient_has_a_time_zone_in_the_api_and_in_fhir(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth(tenant, "ehr-system")
    api = ApiDriver(client, headers)
    created = api.create("patients", patient_body(time_zone="America/Chicago"))
    assert created["time_zone"] == "America/Chicago"
    served = client.get(f"/fhir/Patient/{created['id']}", headers=headers).json()
    assert served["extension"] == [{"url": TIME_ZONE, "valueCode": "America/Chicago"}]
    sent = patient_resource(extension=[{"url": TIME_ZONE, "valueCode": "Europe/Oslo"}])
    from_fhir = client.post("/fhir/Patient", json=sent, headers=headers)
    assert from_fhir.status_code == 201, from_fhir.text
    assert client.get(f"{API}/patients/{from_fhir.json()['id']}", headers=headers).json()["time_zone"] == "Europe/Oslo"
    assert api.create("patients", patient_body())["time_zone"] is None  # not said: the page says so


def test_a_time_zone_that_is_not_one_is_refused_naming_it(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth(tenant, "ehr-system")
    refused = client.post(f"{API}/patients", json=patient_body(time_zone="Central Time"), headers=headers)
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["errors"]
    assert problem["field"] == "time_zone" and "is not an IANA time zone" in problem["message"]
    for value in ("Mars/Olympus_Mons", 5):
        sent = patient_resource(extension=[{"url": TIME_ZONE, "valueCode": value}])
        answer = client.post("/fhir/Patient", json=sent, headers=headers)
        assert answer.status_code in (400, 422), answer.text
        [issue] = answer.json()["issue"]
        assert issue["expression"][0].startswith("Patient.extension"), issue
