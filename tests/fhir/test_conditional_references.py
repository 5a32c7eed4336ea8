"""Conditional references (`Patient?identifier=system|value`) as senders write them (issue #19, item 7).

FHIR R4 http.html#trules: one match is rewritten to Type/id, no match or several fail the transaction. Tandem
takes them on every write path (single POST/PUT, batch, transaction, import); a refusal names the element and
the fix and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from service.fhir.bundles import transaction_order
from tests.fhir.support import fhir_headers, patient_resource
from tests.fhir.test_facade_conformance import _phq9_response

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.7418.2"


def _patient(mrn: str, system: str = MRN_SYSTEM) -> dict[str, Any]:
    identifier = [
        {
            "system": system,
            "value": mrn,
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
        }
    ]
    return patient_resource(identifier=identifier)


def _by_mrn(mrn: str) -> str:
    return f"Patient?identifier={MRN_SYSTEM}|{mrn}"


def _post(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    return client.post(path, content=json.dumps(body), headers=headers)


def _responses_of(client: TestClient, headers: dict[str, str], patient_id: str) -> int:
    found = client.get(f"/fhir/QuestionnaireResponse?subject=Patient/{patient_id}", headers=headers).json()
    return int(found["total"])


def _transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _create(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def _issue(body: dict[str, Any]) -> dict[str, Any]:
    issue: dict[str, Any] = body["issue"][0]
    return issue


def test_a_transaction_resolves_one_match_and_refuses_none_or_several(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    patient_id = _post(client, headers, "/fhir/Patient", _patient("C-1")).json()["id"]

    one = _post(client, headers, "/fhir", _transaction(_create(_phq9_response(_by_mrn("C-1")))))
    assert one.status_code == 200, one.text
    location = one.json()["entry"][0]["response"]["location"]
    stored = client.get(f"/fhir/{location.split('/_history')[0]}", headers=headers).json()
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"  # rewritten to the one match

    # zero matches: the whole transaction fails, its other entries included, naming entry, element and fix
    before = _responses_of(client, headers, patient_id)
    none = _post(
        client,
        headers,
        "/fhir",
        _transaction(_create(_phq9_response(f"Patient/{patient_id}")), _create(_phq9_response(_by_mrn("NO-SUCH-MRN")))),
    )
    assert none.status_code == 422, none.text
    issue = _issue(none.json())
    assert issue["expression"] == ["Bundle.entry[1].resource.subject.reference"]
    assert issue["code"] == "not-found"
    assert "matches no patient; send the Patient first or check the MRN system" in issue["diagnostics"]
    assert _responses_of(client, headers, patient_id) == before  # entry 0 was rolled back too

    # two matches (a bare value matches the MRN of two patients under different systems): refused
    _post(client, headers, "/fhir/Patient", _patient("TWIN", system="urn:oid:9.9"))
    _post(client, headers, "/fhir/Patient", _patient("TWIN"))
    several = _post(client, headers, "/fhir", _transaction(_create(_phq9_response("Patient?identifier=TWIN"))))
    assert several.status_code == 422, several.text
    assert _issue(several.json())["code"] == "multiple-matches"
    assert _issue(several.json())["expression"] == ["Bundle.entry[0].resource.subject.reference"]


def test_a_conditional_reference_finds_a_patient_the_same_transaction_creates_wherever_it_is_listed(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    bundle = _transaction(
        _create(_phq9_response(_by_mrn("SAME-TX"))),  # listed first: the POSTed Patients run first
        {"fullUrl": "urn:uuid:1f0c3f0e-0000-4000-8000-0000000000b1", **_create(_phq9_response("placeholder"))},
        _create(_patient("SAME-TX")) | {"fullUrl": "urn:uuid:1f0c3f0e-0000-4000-8000-0000000000b2"},
    )
    bundle["entry"][1]["resource"]["subject"] = {"reference": "urn:uuid:1f0c3f0e-0000-4000-8000-0000000000b2"}
    assert transaction_order(bundle["entry"]) == [2, 0, 1]
    answer = _post(client, headers, "/fhir", bundle)
    assert answer.status_code == 200, answer.text
    patient_id = answer.json()["entry"][2]["response"]["location"].split("/")[1]
    assert _responses_of(client, headers, patient_id) == 2  # by MRN and by urn:uuid, both before their Patient


def test_a_batch_refuses_only_the_entry_whose_reference_matches_nothing(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    patient_id = _post(client, headers, "/fhir/Patient", _patient("B-1")).json()["id"]
    answer = _post(
        client,
        headers,
        "/fhir",
        _transaction(_create(_phq9_response(_by_mrn("B-1"))), _create(_phq9_response(_by_mrn("B-404"))), kind="batch"),
    )
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["entry"]
    assert first["response"]["status"] == "201"
    assert second["response"]["status"] == "422"
    issue = _issue(second["response"]["outcome"])
    assert issue["expression"] == ["Bundle.entry[1].resource.subject.reference"]
    assert "B-404 matches no patient" in issue["diagnostics"]
    assert _responses_of(client, headers, patient_id) == 1


def test_single_post_and_put_take_a_conditional_reference(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    patient_id = _post(client, headers, "/fhir/Patient", _patient("S-1")).json()["id"]
    # percent-encoded, as an HTTP client may write the query of a URL
    encoded = f"Patient?identifier={quote(f'{MRN_SYSTEM}|S-1', safe='')}"
    created = _post(client, headers, "/fhir/QuestionnaireResponse", _phq9_response(encoded))
    assert created.status_code == 201, created.text
    assert created.json()["subject"]["reference"] == f"Patient/{patient_id}"
    body = created.json()
    body["subject"] = {"reference": _by_mrn("S-1")}
    updated = client.put(
        f"/fhir/QuestionnaireResponse/{body['id']}",
        content=json.dumps(body),
        headers={**headers, "If-Match": created.headers["etag"]},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["subject"]["reference"] == f"Patient/{patient_id}"


def test_malformed_or_unsupported_criteria_are_refused_naming_the_element_and_the_fix(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    patient_id = _post(client, headers, "/fhir/Patient", _patient("M-1")).json()["id"]
    cases = {
        "Patient?": ("names no search criteria", "invalid"),
        "Patient?identifier=": ("identifier has no value", "invalid"),
        "Patient?name=Okonkwo": ("'name' is not supported in a conditional reference", "not-supported"),
        "Patient?identifier=x|y&_count=1": ("'_count' is not supported", "not-supported"),
        "Spaceship?identifier=a|b": ("a conditional reference can name Patient", "not-supported"),
    }
    for reference, (message, code) in cases.items():
        answer = _post(client, headers, "/fhir/QuestionnaireResponse", _phq9_response(reference))
        assert answer.status_code == 422, (reference, answer.text)
        issue = _issue(answer.json())
        assert issue["expression"] == ["QuestionnaireResponse.subject.reference"], reference
        assert message in issue["diagnostics"], (reference, issue)
        assert "Type?identifier=system|value" in issue["diagnostics"] or code == "not-supported", reference
        assert issue["code"] == code, reference
    assert _responses_of(client, headers, patient_id) == 0


def test_another_tenants_patient_never_resolves(
    client: TestClient, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    ours, theirs = new_tenant(), new_tenant()
    their_headers = fhir_headers(auth(theirs, "ehr-system"))
    their_patient = _post(client, their_headers, "/fhir/Patient", _patient("OTHER-1")).json()["id"]
    headers = fhir_headers(auth(ours, "ehr-system"))
    answer = _post(client, headers, "/fhir", _transaction(_create(_phq9_response(_by_mrn("OTHER-1")))))
    assert answer.status_code == 422, answer.text
    issue = _issue(answer.json())
    assert issue["code"] == "not-found"  # the same answer as an MRN nobody has: nothing about the other tenant
    assert "matches no patient" in issue["diagnostics"]
    assert _responses_of(client, their_headers, their_patient) == 0


def test_a_logical_patient_reference_resolves_like_a_conditional_one(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = fhir_headers(auth(tenant, "ehr-system"))
    patient_id = _post(client, headers, "/fhir/Patient", _patient("L-1&2")).json()["id"]
    response = _phq9_response("unused")
    response["subject"] = {"identifier": {"system": MRN_SYSTEM, "value": "L-1&2"}, "display": "Ada Okonkwo"}
    created = _post(client, headers, "/fhir/QuestionnaireResponse", response)
    assert created.status_code == 201, created.text
    assert created.json()["subject"]["reference"] == f"Patient/{patient_id}"

    response["subject"] = {"identifier": {"system": MRN_SYSTEM, "value": "L-404"}}
    unknown = _post(client, headers, "/fhir/QuestionnaireResponse", response)
    assert unknown.status_code == 422, unknown.text
    assert _issue(unknown.json())["expression"] == ["QuestionnaireResponse.subject.identifier"]
    assert "matches no patient" in _issue(unknown.json())["diagnostics"]

    response["subject"] = {"identifier": {"system": MRN_SYSTEM}}  # system| would match every MRN: refused
    vague = _post(client, headers, "/fhir/QuestionnaireResponse", response)
    assert vague.status_code == 422, vague.text
    assert "identifier has no value" in _issue(vague.json())["diagnostics"]
    assert _responses_of(client, headers, patient_id) == 1
