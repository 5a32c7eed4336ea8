"""The EHR-peer harness works, and sekmet-fhir behaves the way our sync relies on (see README.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ehr_peer.fault_proxy import Fault, FaultPlan, FaultProxy, FaultRule
from tests.ehr_peer.sekmet_server import (
    ASSERTION_TYPE,
    SekmetServer,
    SmartClient,
    run_conformance_smoke,
    sekmet_fixture,
)

sekmet = sekmet_fixture()
sekmet_smart = sekmet_fixture(smart=True)

SYNC_TYPES = ["Patient", "Observation", "Procedure", "MedicationAdministration", "Encounter"]
SYSTEM = "urn:uuid:5a1b7c1e-0000-4000-8000-tandemtest01"


def ident(value: str | None = None) -> dict[str, str]:
    return {"system": SYSTEM, "value": value or uuid.uuid4().hex}


def minimal(rtype: str, identifier: dict[str, str], patient: str = "Patient/example") -> dict[str, Any]:
    """The smallest resource of each type sekmet's strict validation accepts."""
    subject = {"reference": patient}
    bodies: dict[str, dict[str, Any]] = {
        "Patient": {"name": [{"family": "Harness"}]},
        "Observation": {
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "44249-1"}]},
            "subject": subject,
            "valueInteger": 7,
        },
        "Procedure": {"status": "completed", "subject": subject},
        "MedicationAdministration": {
            "status": "completed",
            "medicationCodeableConcept": {"text": "esketamine"},
            "subject": subject,
            "effectiveDateTime": "2024-05-01T10:00:00Z",
        },
        "Encounter": {
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject,
        },
        # QuestionnaireResponse.identifier is 0..1 (an object, not a list)
        "QuestionnaireResponse": {"status": "completed", "questionnaire": "urn:q:phq9", "identifier": identifier},
    }
    body = {"resourceType": rtype, **bodies[rtype]}
    if rtype != "QuestionnaireResponse":
        body["identifier"] = [identifier]
    return body


@pytest.fixture(scope="module")
def fhir(sekmet: SekmetServer) -> Iterator[httpx.Client]:
    with sekmet.client() as client:
        yield client


@pytest.fixture
def proxy(sekmet: SekmetServer) -> Iterator[FaultProxy]:
    with FaultProxy(sekmet.root_url) as running:
        yield running


def search_identifier(client: httpx.Client, rtype: str, identifier: dict[str, str], **headers: str) -> httpx.Response:
    return client.get(rtype, params={"identifier": f"{identifier['system']}|{identifier['value']}"}, headers=headers)


# ---------------------------------------------------------------- sekmet starts, open and SMART


def test_open_sekmet_answers_metadata_on_loopback_only(sekmet: SekmetServer) -> None:
    cs = sekmet.metadata()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert sekmet.base_url == f"http://127.0.0.1:{sekmet.port}/fhir"
    assert sekmet.settings["host"] == "127.0.0.1"
    assert f"Uvicorn running on http://127.0.0.1:{sekmet.port}" in sekmet.log_path.read_text()
    assert httpx.get(f"{sekmet.base_url}/Patient", params={"_count": 1}).status_code == 200  # no auth needed


def test_capability_statement_covers_what_sync_needs(sekmet: SekmetServer) -> None:
    rest = sekmet.metadata()["rest"][0]
    assert {"transaction", "batch"} <= {i["code"] for i in rest["interaction"]}
    assert len(rest["resource"]) == 53
    resources = {r["type"]: r for r in rest["resource"]}
    for rtype in SYNC_TYPES:
        resource = resources[rtype]
        assert {"create", "update", "patch", "read", "vread", "search-type", "delete", "history-instance"} <= {
            i["code"] for i in resource["interaction"]
        }
        assert resource["conditionalCreate"] is True
        assert resource["conditionalUpdate"] is True
        assert resource["updateCreate"] is True
        assert resource["versioning"] == "versioned-update"
        assert "identifier" in {p["name"] for p in resource["searchParam"]}
    # QuestionnaireResponse (and Questionnaire) are stored but not advertised and have no search parameters
    assert "QuestionnaireResponse" not in resources
    assert "Questionnaire" not in resources


def test_create_then_search_by_identifier(fhir: httpx.Client) -> None:
    patient = fhir.post("Patient", json=minimal("Patient", ident())).json()
    for rtype in SYNC_TYPES:
        wanted, other = ident(), ident()
        created = fhir.post(rtype, json=minimal(rtype, wanted, f"Patient/{patient['id']}"))
        assert created.status_code == 201, created.text
        assert fhir.post(rtype, json=minimal(rtype, other, f"Patient/{patient['id']}")).status_code == 201
        bundle = search_identifier(fhir, rtype, wanted).json()
        assert bundle["total"] == 1, (rtype, bundle)
        assert [e["resource"]["id"] for e in bundle["entry"]] == [created.json()["id"]]


def test_questionnaire_response_identifier_search_is_ignored_unless_strict(fhir: httpx.Client) -> None:
    first, second = ident(), ident()
    for identifier in (first, second):
        created = fhir.post("QuestionnaireResponse", json=minimal("QuestionnaireResponse", identifier))
        assert created.status_code == 201, created.text
    lenient = search_identifier(fhir, "QuestionnaireResponse", first).json()
    assert lenient["total"] >= 2  # the unknown parameter is dropped: every QuestionnaireResponse matches
    warning = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert "Unknown search parameter 'identifier'" in warning[0]["resource"]["issue"][0]["diagnostics"]
    strict = search_identifier(fhir, "QuestionnaireResponse", first, Prefer="handling=strict")
    assert strict.status_code == 400
    conditional = fhir.post(
        "QuestionnaireResponse",
        json=minimal("QuestionnaireResponse", first),
        headers={"If-None-Exist": f"identifier={first['system']}|{first['value']}"},
    )
    assert conditional.status_code == 400
    assert conditional.json()["resourceType"] == "OperationOutcome"
    # ... and unknown parameters on advertised types are dropped the same way
    assert fhir.get("Patient", params={"nonsense": "x"}).status_code == 200
    assert fhir.get("Patient", params={"nonsense": "x"}, headers={"Prefer": "handling=strict"}).status_code == 400


def test_strict_validation_refuses_with_400_and_operation_outcome(fhir: httpx.Client) -> None:
    def refused(rtype: str, body: Any = None, content: bytes | None = None) -> dict[str, Any]:
        response = fhir.post(rtype, json=body) if content is None else fhir.post(rtype, content=content)
        assert response.status_code == 400, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        return outcome

    unknown = refused("Patient", {"resourceType": "Patient", "notAnElement": True})
    assert unknown["issue"][0]["code"] == "structure"
    assert unknown["issue"][0]["expression"] == ["Patient.notAnElement"]
    missing = refused("Observation", {"resourceType": "Observation", "status": "final"})
    assert missing["issue"][0]["expression"] == ["Observation.code"]
    refused("Patient", {"resourceType": "Patient", "birthDate": "not-a-date"})
    refused("Patient", {"resourceType": "Observation"})  # type does not match the URL
    refused("Patient", content=b"{not json")
    # structure only: no terminology, no cardinality beyond the models, no reference resolution
    assert fhir.post("Patient", json={"resourceType": "Patient", "gender": "bogus"}).status_code == 201
    dangling = minimal("Procedure", ident(), "Patient/does-not-exist")
    assert fhir.post("Procedure", json=dangling).status_code == 201


def test_etag_and_if_match(fhir: httpx.Client) -> None:
    body = minimal("Patient", ident())
    created = fhir.post("Patient", json=body)
    rid = created.json()["id"]
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"].endswith(f"/fhir/Patient/{rid}/_history/1")
    assert fhir.get(f"Patient/{rid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304
    body["id"] = rid
    updated = fhir.put(f"Patient/{rid}", json=body, headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200
    assert updated.headers["ETag"] == 'W/"2"'
    stale = fhir.put(f"Patient/{rid}", json=body, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["issue"][0]["code"] == "conflict"
    assert fhir.put(f"Patient/{rid}", json=body, headers={"If-Match": '"2"'}).status_code == 200  # strong form too
    assert fhir.put(f"Patient/{rid}", json=body).status_code == 200  # If-Match is optional: last writer wins
    client_id = f"tandem-{uuid.uuid4().hex[:16]}"
    assert fhir.put(f"Patient/{client_id}", json={**body, "id": client_id}).status_code == 201  # update-as-create


def test_conditional_create(fhir: httpx.Client) -> None:
    identifier = ident()
    query = f"identifier={identifier['system']}|{identifier['value']}"
    first = fhir.post("Observation", json=minimal("Observation", identifier), headers={"If-None-Exist": query})
    again = fhir.post("Observation", json=minimal("Observation", identifier), headers={"If-None-Exist": query})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert fhir.post("Observation", json=minimal("Observation", identifier)).status_code == 201  # now two
    ambiguous = fhir.post("Observation", json=minimal("Observation", identifier), headers={"If-None-Exist": query})
    assert ambiguous.status_code == 412


def test_paging_follows_next_links(fhir: httpx.Client) -> None:
    system = f"urn:uuid:{uuid.uuid4()}"
    for n in range(5):
        fhir.post("Procedure", json=minimal("Procedure", {"system": system, "value": str(n)}))
    page = fhir.get("Procedure", params={"identifier": f"{system}|", "_count": 2}).json()
    assert page["total"] == 5
    seen = []
    while True:
        seen += [e["resource"]["identifier"][0]["value"] for e in page.get("entry", [])]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        page = fhir.get(nxt[0]).json()
    assert sorted(seen) == ["0", "1", "2", "3", "4"]


def test_transaction_is_atomic_and_batch_is_not(fhir: httpx.Client) -> None:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    good_obs = minimal("Observation", ident(), patient_url)
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": minimal("Patient", ident()),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": good_obs, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    ok = fhir.post("", json=transaction).json()
    assert ok["type"] == "transaction-response"
    assert [e["response"]["status"] for e in ok["entry"]] == ["201 Created", "201 Created"]
    assert ok["entry"][1]["resource"]["subject"]["reference"].startswith("Patient/")

    survivor, invalid = ident(), {"resourceType": "Observation", "status": "final"}
    transaction["entry"] = [
        {"resource": minimal("Procedure", survivor), "request": {"method": "POST", "url": "Procedure"}},
        {"resource": invalid, "request": {"method": "POST", "url": "Observation"}},
    ]
    failed = fhir.post("", json=transaction)
    assert failed.status_code == 400
    assert "rolled back" in failed.json()["issue"][0]["diagnostics"]
    assert search_identifier(fhir, "Procedure", survivor).json()["total"] == 0

    batch = {**transaction, "type": "batch"}
    answered = fhir.post("", json=batch)
    assert answered.status_code == 200
    statuses = [e["response"]["status"] for e in answered.json()["entry"]]
    assert statuses == ["201 Created", "400 Bad Request"]
    assert answered.json()["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert search_identifier(fhir, "Procedure", survivor).json()["total"] == 1

    conditional = ident()
    entry = {
        "resource": minimal("Procedure", conditional),
        "request": {"method": "POST", "url": "Procedure", "ifNoneExist": f"identifier={SYSTEM}|{conditional['value']}"},
    }
    once = fhir.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]}).json()
    twice = fhir.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]}).json()
    assert (once["entry"][0]["response"]["status"], twice["entry"][0]["response"]["status"]) == (
        "201 Created",
        "200 OK",
    )


def test_reset_wipes_resources(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.ehr_peer.sekmet_server import start_sekmet

    with start_sekmet(tmp_path_factory.mktemp("reset")) as server, server.client() as client:
        identifier = ident()
        assert client.post("Patient", json=minimal("Patient", identifier)).status_code == 201
        server.reset()
        assert search_identifier(client, "Patient", identifier).json()["total"] == 0
        assert client.post("Patient", json=minimal("Patient", identifier)).status_code == 201  # still serving


# ---------------------------------------------------------------- SMART Backend Services


def test_smart_backend_services_token_flow(sekmet_smart: SekmetServer) -> None:
    smart = sekmet_smart.smart_client
    assert smart is not None
    assert sekmet_smart.token_url == f"{sekmet_smart.root_url}/auth/token"
    config = httpx.get(sekmet_smart.smart_configuration_url).json()
    assert config["token_endpoint"] == sekmet_smart.token_url
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert "RS384" in config["token_endpoint_auth_signing_alg_values_supported"]
    security = sekmet_smart.metadata()["rest"][0]["security"]  # metadata stays public
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"

    patients = f"{sekmet_smart.base_url}/Patient"
    refused = httpx.get(patients)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert httpx.get(patients, headers={"Authorization": "Bearer not-a-token"}).status_code == 401

    form = smart.token_request_form()
    granted = httpx.post(sekmet_smart.token_url, data=form)
    assert granted.status_code == 200, granted.text
    token = granted.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600
    assert token["scope"] == "system/*.*"
    authorised = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(patients, headers=authorised).status_code == 200
    created = httpx.post(patients, json=minimal("Patient", ident()), headers=authorised)
    assert created.status_code == 201

    replay = httpx.post(sekmet_smart.token_url, data=form)  # same assertion, same jti
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")
    impostor = SmartClient.generate(smart.client_id)
    impostor.token_url = smart.token_url
    forged = httpx.post(smart.token_url, data=impostor.token_request_form())
    assert (forged.status_code, forged.json()["error"]) == (401, "invalid_client")
    wrong_aud = httpx.post(smart.token_url, data=smart.token_request_form(assertion=smart.client_assertion("x")))
    assert wrong_aud.status_code == 401
    no_type = {**smart.token_request_form(), "client_assertion_type": "x"}
    assert httpx.post(smart.token_url, data=no_type).status_code == 400
    assert ASSERTION_TYPE.endswith("jwt-bearer")

    read_only = {"Authorization": f"Bearer {sekmet_smart.token('system/*.read')}"}
    assert httpx.get(patients, headers=read_only).status_code == 200
    assert httpx.post(patients, json=minimal("Patient", ident()), headers=read_only).status_code == 403


# ---------------------------------------------------------------- conformance_smoke


def test_conformance_smoke_against_open_sekmet(sekmet: SekmetServer) -> None:
    outcome = run_conformance_smoke(sekmet.base_url)
    assert outcome.ok, outcome.failures()
    assert outcome.passed >= 15


def test_conformance_smoke_with_bearer_token(sekmet_smart: SekmetServer) -> None:
    outcome = run_conformance_smoke(sekmet_smart.base_url, sekmet_smart.token())
    assert outcome.ok, outcome.failures()
    assert outcome.passed >= 15
    without = run_conformance_smoke(sekmet_smart.base_url)
    assert not without.ok
    assert without.exit_code == 1
    assert "got 401" in without.failures()[0]


# ---------------------------------------------------------------- fault proxy


def test_proxy_passes_through_and_rewrites_urls(sekmet: SekmetServer, proxy: FaultProxy) -> None:
    with httpx.Client(base_url=proxy.url("/fhir")) as client:
        system = f"urn:uuid:{uuid.uuid4()}"
        for n in range(3):
            created = client.post("Patient", json=minimal("Patient", {"system": system, "value": str(n)}))
            assert created.status_code == 201
            assert created.headers["Location"].startswith(proxy.url("/fhir/Patient/"))
        page = client.get("Patient", params={"identifier": f"{system}|", "_count": 2}).json()
        nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
        assert nxt.startswith(proxy.url("/fhir/Patient?"))
        assert len(client.get(nxt).json()["entry"]) == 1
    assert proxy.count() == 5
    assert proxy.count(fault=None, method="POST", status=201, forwarded=True) == 3
    assert [r.seq for r in proxy.records] == [1, 2, 3, 4, 5]


def test_proxy_injects_500_and_429_without_forwarding(proxy: FaultProxy, fhir: httpx.Client) -> None:
    proxy.set_plan(
        FaultPlan(
            [
                FaultRule(Fault.error(), method="POST", path=r"^/fhir/Observation$", times=1),
                FaultRule(Fault.throttle(retry_after=7), method="POST", path=r"^/fhir/Observation$", times=1),
            ]
        )
    )
    identifier = ident()
    with httpx.Client(base_url=proxy.url("/fhir")) as client:
        body = minimal("Observation", identifier)
        error = client.post("Observation", json=body)
        assert error.status_code == 500
        assert error.json()["resourceType"] == "OperationOutcome"
        throttled = client.post("Observation", json=body)
        assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
        assert throttled.json()["issue"][0]["code"] == "throttled"
        assert search_identifier(fhir, "Observation", identifier).json()["total"] == 0
        assert client.post("Observation", json=body).status_code == 201  # rules exhausted: passes
        assert client.get("Observation", params={"_count": 1}).status_code == 200  # other requests unaffected
    assert proxy.count(fault="error", status=500, forwarded=False) == 1
    assert proxy.count(fault="throttle", status=429, forwarded=False) == 1
    assert proxy.count(fault=None) == 2


def test_drop_after_forward_leaves_the_write_done_upstream(proxy: FaultProxy, fhir: httpx.Client) -> None:
    proxy.set_plan(FaultPlan([FaultRule(Fault.drop_after_forward(), method="POST")]))
    identifier = ident()
    with httpx.Client(base_url=proxy.url("/fhir")) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("Procedure", json=minimal("Procedure", identifier))
    assert search_identifier(fhir, "Procedure", identifier).json()["total"] == 1  # outcome unknown, but applied
    (record,) = proxy.records
    assert (record.fault, record.forwarded, record.upstream_status, record.status) == (
        "drop_after_forward",
        True,
        201,
        None,
    )

    proxy.set_plan(FaultPlan([FaultRule(Fault.drop_after_forward(reset=True))]))
    with httpx.Client(base_url=proxy.url("/fhir")) as client, pytest.raises(httpx.TransportError):
        client.get("Procedure", params={"_count": 1})

    proxy.set_plan(FaultPlan([FaultRule(Fault.drop_before_forward())]))
    never = ident()
    with httpx.Client(base_url=proxy.url("/fhir")) as client, pytest.raises(httpx.TransportError):
        client.post("Procedure", json=minimal("Procedure", never))
    assert search_identifier(fhir, "Procedure", never).json()["total"] == 0


def test_delay_holds_the_response_after_the_upstream_answered(proxy: FaultProxy, fhir: httpx.Client) -> None:
    proxy.set_plan(FaultPlan([FaultRule(Fault.delay(1.0), method="POST")]))
    identifier = ident()
    with httpx.Client(base_url=proxy.url("/fhir"), timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.post("Encounter", json=minimal("Encounter", identifier))
    assert search_identifier(fhir, "Encounter", identifier).json()["total"] == 1
    with httpx.Client(base_url=proxy.url("/fhir"), timeout=5) as client:
        started = time.monotonic()
        assert client.post("Encounter", json=minimal("Encounter", ident())).status_code == 201
        assert time.monotonic() - started >= 1.0
        started = time.monotonic()
        assert client.get("Encounter", params={"_count": 1}).status_code == 200  # GET not delayed
        assert time.monotonic() - started < 0.9
    assert proxy.count(fault="delay", forwarded=True) == 2


def test_seeded_probability_is_reproducible(sekmet: SekmetServer) -> None:
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan([FaultRule(Fault.error(503), probability=0.3)], seed=seed)
        with FaultProxy(sekmet.root_url, plan) as proxy, httpx.Client(base_url=proxy.url("/fhir")) as client:
            for _ in range(40):
                client.get("metadata")
            return [r.fault for r in proxy.records]

    first, again, other = run(42), run(42), run(7)
    assert first == again
    assert first != other
    assert 4 <= first.count("error") <= 20
    skip_plan = FaultPlan([FaultRule(Fault.error(), path=r"/metadata$", skip=2, times=2)])
    with FaultProxy(sekmet.root_url, skip_plan) as proxy, httpx.Client(base_url=proxy.url("/fhir")) as client:
        assert [client.get("metadata").status_code for _ in range(5)] == [200, 200, 500, 500, 200]


def test_proxy_forwards_bearer_tokens_to_smart_sekmet(sekmet_smart: SekmetServer) -> None:
    with FaultProxy(sekmet_smart.root_url) as proxy:
        config = httpx.get(proxy.url("/fhir/.well-known/smart-configuration")).json()
        assert config["token_endpoint"] == sekmet_smart.token_url  # discovery is not rewritten
        with httpx.Client(base_url=proxy.url("/fhir")) as client:
            assert client.get("Patient").status_code == 401
            headers = sekmet_smart.auth_headers()
            assert client.post("Patient", json=minimal("Patient", ident()), headers=headers).status_code == 201
