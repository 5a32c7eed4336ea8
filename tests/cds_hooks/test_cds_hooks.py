"""CDS Hooks 2.0 end to end: an EHR written from the spec (tests/cds_hooks/ehr.py) registers with
`tandem cds register`, serves its JWKS on a loopback HTTP server, and calls discovery then patient-view.

Both databases (the `database_url` fixture). What the card must say comes from the issue: the plan status and
phase in words, urgent reasons first, indicator critical / warning / info, what is due next, a link to the patient
page; an empty card list for a patient Tandem does not follow or another hospital's; 401 for a bad JWT.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.builders import enrollment_body
from tests.cds_hooks.ehr import CdsClient, EhrWeb, SigningKey, fhir_patient
from tests.cds_hooks.support import (
    MRN_SYSTEM,
    NOW,
    SERVICE,
    SERVICE_BASE,
    api,
    enrolled,
    phq9,
    plan,
    prefetch,
    registered,
)


def test_discovery_lists_the_plan_status_service_and_its_patient_prefetch(cds_app: TestClient, ehr: EhrWeb) -> None:
    client = CdsClient(cds_app, SERVICE_BASE, "https://ehr.hospital.test/any", ehr.keys[0])
    response = client.discover()
    assert response.status_code == 200, response.text
    services = {s["id"]: s for s in response.json()["services"]}
    view = services[SERVICE]
    assert view["hook"] == "patient-view"
    assert view["description"] and view["title"]
    assert view["prefetch"] == {"patient": "Patient/{{context.patientId}}"}
    assert services["tandem-plan-status-booking"]["hook"] == "appointment-book"


def test_the_card_says_the_plan_status_urgent_reasons_first_and_what_is_due(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str
) -> None:
    issuer = registered(cds_cli, tenant, ehr)
    driver = api(cds_app, tenant)
    at_risk = enrolled(driver, "MRN-RISK", days_ago=3)
    driver.create("questionnaire-responses", phq9(at_risk, 1, item9=1))
    on_track = enrolled(driver, "MRN-TRACK", days_ago=3)
    driver.create("questionnaire-responses", phq9(on_track, 1, item9=0))
    needs_attention = enrolled(driver, "MRN-ATTN", days_ago=40)
    expected = {p: plan(cds_app, tenant, p) for p in (at_risk, on_track, needs_attention)}
    assert [expected[p]["status"] for p in (at_risk, on_track, needs_attention)] == [
        "at_risk", "on_track", "needs_attention",
    ]  # fmt: skip

    rsa_client = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0])
    ec_client = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[1], jku=ehr.jwks_url)
    cards = {}
    for client, (ehr_id, mrn, patient_id) in [
        (rsa_client, ("eRisk1", "MRN-RISK", at_risk)),
        (ec_client, ("eTrack1", "MRN-TRACK", on_track)),
        (rsa_client, ("eAttn1", "MRN-ATTN", needs_attention)),
    ]:
        response = client.call(SERVICE, ehr_id, prefetch=prefetch(ehr_id, mrn))
        assert response.status_code == 200, response.text
        (card,) = response.json()["cards"]
        cards[patient_id] = card
        assert card["source"]["label"] == "Tandem"
        assert len(card["summary"]) <= 140
        page = f"{SERVICE_BASE}/patients/{patient_id}"
        assert {"label": "Open the plan in Tandem", "url": page, "type": "absolute"} in card["links"]
        uuid.UUID(card["uuid"])

    assert ehr.requests.count("/jwks.json") == 1  # the JWK Set is cached: three calls, one fetch

    risky = cards[at_risk]
    assert risky["indicator"] == "critical"
    assert risky["summary"].startswith("Ketamine + CBT plan: At risk, ")
    urgent = [r for r in expected[at_risk]["reasons"] if r["open"] and r["severity"] == "urgent"]
    assert urgent and urgent[0]["code"] == "phq9_item9_positive"
    assert (urgent[0]["what_happened"] or urgent[0]["message"]) in risky["summary"]
    why = risky["detail"].split("**Due next**")[0]
    first_reason = why.splitlines()[1]
    assert first_reason.startswith("- **Urgent:** "), risky["detail"]
    assert "PHQ-9" in first_reason
    assert "**Due next**" in risky["detail"]

    calm = cards[on_track]
    assert calm["indicator"] == "info"
    assert calm["summary"].startswith("Ketamine + CBT plan: On track, ")
    phase = expected[on_track]["phase"]
    assert f"{phase} phase" in calm["summary"]
    assert "**Due next**" in calm["detail"]

    late = cards[needs_attention]
    assert late["indicator"] == "warning"
    assert late["summary"].startswith("Ketamine + CBT plan: Needs attention, ")
    assert "**Overdue:**" in late["detail"]
    assert "**Urgent:**" not in late["detail"]


def test_a_patient_linked_to_the_ehr_id_needs_no_prefetch(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str
) -> None:
    admin = api(cds_app, tenant, "admin")
    target = admin.create("sync/targets", {"name": f"EHR {uuid.uuid4().hex[:6]}", "base_url": ehr.fhir_base})
    issuer = registered(cds_cli, tenant, ehr, "--target", target["id"])
    driver = api(cds_app, tenant)
    # a patient the pull created: its source names the EHR's id
    patient_id = driver.patient(source={"system": target["base_url"], "value": "Patient/eLinked9"})
    driver.create("enrollments", enrollment_body(patient_id, start_date=(NOW - timedelta(days=3)).date().isoformat()))
    client = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[1])
    response = client.call(SERVICE, "eLinked9")
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert card["links"][-1]["url"].endswith(f"/patients/{patient_id}")
    assert ehr.requests == ["/jwks.json"]  # no prefetch and no fhirAuthorization: answered from Tandem's records


def test_without_prefetch_the_patient_is_read_from_the_registered_fhir_server_only(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str
) -> None:
    admin = api(cds_app, tenant, "admin")
    target = admin.create("sync/targets", {"name": f"EHR {uuid.uuid4().hex[:6]}", "base_url": ehr.fhir_base})
    issuer = registered(cds_cli, tenant, ehr, "--target", target["id"])
    patient_id = enrolled(api(cds_app, tenant), "MRN-FETCH", days_ago=3)
    ehr.patients["eFetch2"] = fhir_patient("eFetch2", MRN_SYSTEM, "MRN-FETCH")
    client = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0])
    grant = {"access_token": ehr.access_token, "token_type": "Bearer", "expires_in": 300,
             "scope": "patient/Patient.read", "subject": "tandem"}  # fmt: skip
    response = client.call(SERVICE, "eFetch2", fhir_server=ehr.fhir_base, fhir_authorization=grant)
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert card["links"][-1]["url"].endswith(f"/patients/{patient_id}")
    assert "/fhir/Patient/eFetch2" in ehr.requests

    ehr.requests.clear()
    elsewhere = client.call(SERVICE, "eFetch2", fhir_server="https://93.184.216.34/fhir", fhir_authorization=grant)
    assert elsewhere.status_code == 422, elsewhere.text
    assert "fhirServer" in elsewhere.text
    assert not [r for r in ehr.requests if r.startswith("/fhir/")]


def test_unknown_and_other_hospitals_patients_get_no_cards(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], new_tenant: Callable[[], str]
) -> None:
    ours, theirs = new_tenant(), new_tenant()
    issuer = registered(cds_cli, ours, ehr)
    enrolled(api(cds_app, theirs), "MRN-THEIRS", days_ago=3)  # another hospital's patient, same MRN system
    client = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0])
    for ehr_id, mrn in (("eNobody", "MRN-NOBODY"), ("eTheirs", "MRN-THEIRS")):
        response = client.call(SERVICE, ehr_id, prefetch=prefetch(ehr_id, mrn))
        assert response.status_code == 200, response.text
        assert response.json() == {"cards": []}
    # a prefetch of a different patient than the one in context is not used
    enrolled(api(cds_app, ours), "MRN-OURS", days_ago=3)
    mismatch = client.call(SERVICE, "eInView", prefetch=prefetch("eSomeoneElse", "MRN-OURS"))
    assert mismatch.json() == {"cards": []}


def test_bad_jwts_are_refused_with_401_and_a_json_reason(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str, engine: Engine
) -> None:
    issuer = registered(cds_cli, tenant, ehr)
    enrolled(api(cds_app, tenant), "MRN-JWT", days_ago=3)
    client = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0])
    aud = client.service_url(SERVICE)
    now = int(time.time())
    impostor = SigningKey("RS384", ehr.keys[0].kid, SigningKey.rsa().private)  # the EHR's kid, another key
    replayed = client.token(aud)
    assert client.call(SERVICE, "eJwt", authorization=f"Bearer {replayed}").status_code == 200
    none_token = jwt.encode({"iss": issuer, "aud": aud, "exp": now + 300, "iat": now, "jti": "n"}, "",
                            algorithm="none", headers={"kid": ehr.keys[0].kid})  # fmt: skip
    shared = "a-shared-secret-of-at-least-forty-eight-bytes-long-for-hs384"
    hs_token = jwt.encode({"iss": issuer, "aud": aud, "exp": now + 300, "iat": now, "jti": "h"}, shared,
                          algorithm="HS384", headers={"kid": "k"})  # fmt: skip
    cases = {
        "missing header": None,
        "not bearer": "Basic dXNlcjpwYXNz",
        "malformed": "Bearer not.a.jwt",
        "bad signature": f"Bearer {client.token(aud, key=impostor)}",
        "wrong aud": f"Bearer {client.token(f'{SERVICE_BASE}/cds-services/another-service')}",
        "discovery aud": f"Bearer {client.token(f'{SERVICE_BASE}/cds-services')}",
        "expired": f"Bearer {client.token(aud, iat=now - 900, exp=now - 600)}",
        "issued in the future": f"Bearer {client.token(aud, iat=now + 900, exp=now + 1200)}",
        "no jti": f"Bearer {client.token(aud, jti=None)}",
        "replayed jti": f"Bearer {replayed}",
        "unregistered issuer": f"Bearer {client.token(aud, iss='https://evil.example/ehr')}",
        "unknown kid": f"Bearer {client.token(aud, headers={'kid': 'no-such-kid'})}",
        "foreign jku": f"Bearer {client.token(aud, headers={'jku': 'https://evil.example/jwks.json'})}",
        "alg none": f"Bearer {none_token}",
        "HS384": f"Bearer {hs_token}",
        "a Tandem bearer token": api(cds_app, tenant).headers["Authorization"],
    }
    for label, authorization in cases.items():
        response = client.call(SERVICE, "eJwt", prefetch=prefetch("eJwt", "MRN-JWT"), authorization=authorization)
        assert response.status_code == 401, f"{label}: {response.status_code} {response.text}"
        body = response.json()
        assert body["status"] == 401 and body["detail"], label
        assert "cards" not in body, label
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT outcome, status_code, actor FROM audit_events WHERE tenant_id = :t AND record_kind = :k"),
            {"t": tenant, "k": "cds-hooks"},
        ).all()
    outcomes = [(r.outcome, r.status_code) for r in rows]
    assert ("success", 200) in outcomes
    assert outcomes.count(("failure", 401)) >= 8  # every refusal of the registered issuer is audited there
    assert {r.actor for r in rows} == {issuer}


def test_registration_refuses_what_cannot_work(
    cds_cli: Callable[..., Any], tenant: str, new_tenant: Callable[[], str], ehr: EhrWeb, tmp_path: Any
) -> None:
    assert cds_cli("register", tenant, "https://ehr.test/a").exit_code == 2  # no keys
    assert cds_cli("register", "no-such-hospital", "https://ehr.test/b", "--jwks-url", ehr.jwks_url).exit_code == 2
    assert cds_cli("register", tenant, "https://ehr.test/c", "--jwks-url", "https://10.0.0.8/jwks").exit_code == 2
    private = tmp_path / "private.json"
    key = SigningKey.ec()
    from jwt.algorithms import ECAlgorithm

    private.write_text(json.dumps({"keys": [{**ECAlgorithm.to_jwk(key.private, as_dict=True), "kid": key.kid}]}))
    refused = cds_cli("register", tenant, "https://ehr.test/d", "--jwks-file", str(private))
    assert refused.exit_code == 2 and "private" in refused.output
    public = tmp_path / "public.json"
    public.write_text(json.dumps(ehr.jwks()))
    assert cds_cli("register", tenant, "https://ehr.test/e", "--jwks-file", str(public)).exit_code == 0
    other = cds_cli("register", new_tenant(), "https://ehr.test/e", "--jwks-file", str(public))
    assert other.exit_code == 2 and "another hospital" in other.output
    listed = cds_cli("list", tenant)
    assert "https://ehr.test/e\tinline JWK Set" in listed.output
    assert cds_cli("remove", tenant, "https://ehr.test/e").exit_code == 0
    assert "https://ehr.test/e" not in cds_cli("list", tenant).output


def test_with_a_smart_launch_url_the_card_also_offers_the_smart_app_link(
    settings_factory: Callable[..., TestClient], ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str
) -> None:
    launch = f"{SERVICE_BASE}/smart/launch"
    app = settings_factory(
        sync_allowed_hosts=["127.0.0.1"], sync_require_https=False, public_base_url=SERVICE_BASE,
        cds_smart_launch_url=launch,
    )  # fmt: skip
    issuer = registered(cds_cli, tenant, ehr)
    patient_id = enrolled(api(app, tenant), "MRN-SMART", days_ago=3)
    response = CdsClient(app, SERVICE_BASE, issuer, ehr.keys[1]).call(
        SERVICE, "eSmart", prefetch=prefetch("eSmart", "MRN-SMART")
    )
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    smart, page = card["links"]
    assert smart["type"] == "smart" and smart["url"] == launch
    assert json.loads(smart["appContext"]) == {"patient": patient_id}
    assert page == {
        "label": "Open the plan in Tandem",
        "url": f"{SERVICE_BASE}/patients/{patient_id}",
        "type": "absolute",
    }


def test_the_booking_service_answers_appointment_book_and_refuses_another_hook(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str
) -> None:
    issuer = registered(cds_cli, tenant, ehr)
    enrolled(api(cds_app, tenant), "MRN-BOOK", days_ago=3)
    client = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0])
    booking = "tandem-plan-status-booking"
    answered = client.call(booking, "eBook", hook="appointment-book", prefetch=prefetch("eBook", "MRN-BOOK"))
    assert answered.status_code == 200, answered.text
    assert len(answered.json()["cards"]) == 1
    wrong = client.call(booking, "eBook", hook="patient-view", prefetch=prefetch("eBook", "MRN-BOOK"))
    assert wrong.status_code == 422 and "appointment-book" in wrong.text
    missing = client.call("no-such-service", "eBook", prefetch=prefetch("eBook", "MRN-BOOK"))
    assert missing.status_code == 404


def test_the_smart_link_goes_to_tandems_own_smart_launch_when_it_serves_one(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str
) -> None:
    app: FastAPI = cds_app.app  # type: ignore[assignment]
    if not any(getattr(r, "path", None) == "/smart/launch" for r in app.routes):
        app.add_api_route("/smart/launch", lambda: {}, methods=["GET"])  # stands in for the SMART launch route
    issuer = registered(cds_cli, tenant, ehr)
    patient_id = enrolled(api(cds_app, tenant), "MRN-OWN", days_ago=3)
    response = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0]).call(
        SERVICE, "eOwn", prefetch=prefetch("eOwn", "MRN-OWN")
    )
    (card,) = response.json()["cards"]
    smart = card["links"][0]
    assert smart["type"] == "smart" and smart["url"] == f"{SERVICE_BASE}/smart/launch"
    assert json.loads(smart["appContext"]) == {"patient": patient_id}
