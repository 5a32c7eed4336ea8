"""SMART App Launch of the patient page, end to end: Tandem launched by an EHR's authorization server on loopback
(tests/smart_launch/ehr_server.py), through authorize and token to the page of the right patient, and every
refusal the issue names: a forged iss, a reused code, a wrong PKCE verifier, a tampered state, a patient Tandem
does not know, and a frame origin that is not registered."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from service.auth.tokens import mint_dev_token
from service.records.audit import AuditEvent
from service.settings import Settings
from service.smart_launch.pkce import state_hash
from service.smart_launch.tables import SmartLaunch
from service.web.session_cookie import COOKIE_NAME
from tests.smart_launch.conftest import (
    EHR_ORIGIN,
    TANDEM,
    Hospital,
    ehr_patient,
    new_hospital,
    walk,
)
from tests.smart_launch.ehr_server import EhrServer

STATE_COOKIE = "tandem_smart_state"


@pytest.fixture
def hospital(
    tandem: TestClient, smart_settings: Settings, ehr_server: EhrServer, monkeypatch: pytest.MonkeyPatch
) -> Hospital:
    return new_hospital(tandem, smart_settings, ehr_server, monkeypatch)


def _launch_url(hospital: Hospital, launch: str | None) -> str:
    query = f"iss={hospital.ehr.iss}" + (f"&launch={launch}" if launch else "")
    return f"/smart/launch?{query}"


def _to_callback(tandem: TestClient, hospital: Hospital, launch: str | None) -> str:
    """Launch and authorize; the callback URL the EHR sent the browser to (not yet followed)."""
    first, at_ehr = walk(tandem, _launch_url(hospital, launch), hops=2)
    assert first.status_code == 302, first.text
    assert at_ehr.status_code == 302, at_ehr.text
    callback: str = at_ehr.headers["location"]
    assert callback.startswith(f"{TANDEM}/smart/callback?")
    return callback


def _audit(tandem: TestClient, tenant: str) -> list[AuditEvent]:
    with Session(tandem.app.state.engine) as session:  # type: ignore[attr-defined]
        return list(session.exec(select(AuditEvent).where(col(AuditEvent.tenant_id) == tenant)).all())


def _launches(tandem: TestClient, tenant: str) -> list[SmartLaunch]:
    with Session(tandem.app.state.engine) as session:  # type: ignore[attr-defined]
        return list(session.exec(select(SmartLaunch).where(col(SmartLaunch.tenant_id) == tenant)).all())


def test_an_ehr_launch_opens_the_right_patients_page_framed_by_the_ehr(tandem: TestClient, hospital: Hospital) -> None:
    hospital.ehr.patients["ehr-p1"] = ehr_patient("ehr-p1", hospital.mrn)  # found by MRN
    launch = hospital.ehr.new_launch("ehr-p1", "Practitioner/dr-lee")
    answers = walk(tandem, _launch_url(hospital, launch))
    assert [a.status_code for a in answers] == [302, 302, 303, 200], [a.text[:200] for a in answers]
    authorize = parse_qs(urlsplit(answers[0].headers["location"]).query)
    assert authorize["launch"] == [launch] and authorize["aud"] == [hospital.ehr.iss]
    assert authorize["code_challenge_method"] == ["S256"] and len(authorize["code_challenge"][0]) == 43
    assert {"launch", "openid", "fhirUser"} <= set(authorize["scope"][0].split())
    assert answers[2].headers["location"] == f"/patients/{hospital.patient_id}"
    page = answers[3]
    assert "Okonkwo" in page.text
    # the session cookie is the embedded kind: SameSite=None; Secure; Partitioned (and HttpOnly)
    set_cookie = next(v for v in answers[2].headers.get_list("set-cookie") if v.startswith(f"{COOKIE_NAME}="))
    lowered = set_cookie.lower()
    assert "samesite=none" in lowered and "secure" in lowered and "partitioned" in lowered and "httponly" in lowered
    policy = page.headers["content-security-policy"]
    assert f"frame-ancestors {EHR_ORIGIN};" in policy
    assert "x-frame-options" not in page.headers
    # audit: the launch and the page read both name the EHR user
    user = f"{hospital.ehr.iss}/Practitioner/dr-lee"
    (launched,) = _launches(tandem, hospital.tenant)
    assert launched.outcome == "signed-in" and launched.fhir_user == user and launched.used_at is not None
    rows = _audit(tandem, hospital.tenant)
    launch_rows = [r for r in rows if r.record_kind == "smart-launches"]
    assert [(r.actor, r.actor_role, r.record_id, r.patient_id, r.outcome) for r in launch_rows] == [
        (user, "clinician", launched.id, hospital.patient_id, "success")
    ]
    assert any(r.actor == user and r.action == "read" and r.patient_id == hospital.patient_id for r in rows)


def test_a_standalone_launch_finds_the_patient_by_the_ehrs_id_and_a_scope_gives_the_role(
    tandem: TestClient, smart_settings: Settings, ehr_server: EhrServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hospital = new_hospital(
        tandem,
        smart_settings,
        ehr_server,
        monkeypatch,
        roles=("Practitioner=clinician", "scope:user/Task.cruds=coordinator"),
    )
    # a patient Tandem pulled from this EHR: its source names the EHR's id (the EHR serves no Patient for it)
    pulled = hospital.api.patient(source={"system": hospital.ehr.iss, "value": "Patient/ehr-77"}, family_name="Lind")
    from tests.smart_launch.ehr_server import LaunchContext

    granted = "launch/patient openid fhirUser patient/Patient.rs user/Task.cruds"
    hospital.ehr.standalone = LaunchContext("ehr-77", "PractitionerRole/desk-3", granted)
    answers = walk(tandem, _launch_url(hospital, None))
    assert [a.status_code for a in answers] == [302, 302, 303, 200], [a.text[:200] for a in answers]
    scope = parse_qs(urlsplit(answers[0].headers["location"]).query)["scope"][0].split()
    assert "launch/patient" in scope and "launch" not in scope
    assert answers[2].headers["location"] == f"/patients/{pulled}" and "Lind" in answers[3].text
    assert f"GET /ehr/{hospital.ehr.name}/fhir/Patient/ehr-77" not in hospital.ehr.requests
    (row,) = [r for r in _audit(tandem, hospital.tenant) if r.record_kind == "smart-launches"]
    assert row.actor_role == "coordinator" and row.actor.endswith("/PractitionerRole/desk-3")


def test_a_forged_iss_is_refused_before_any_request_leaves_tandem(
    tandem: TestClient, hospital: Hospital, ehr_server: EhrServer
) -> None:
    forged = ehr_server.add("not-registered", client_id="tandem-app", redirect_uri=f"{TANDEM}/smart/callback")
    for iss in (forged.iss, "https://ehr.attacker.example/fhir", f"{hospital.ehr.iss}/../../not-registered/fhir"):
        answer = tandem.get("/smart/launch", params={"iss": iss, "launch": "anything"}, follow_redirects=False)
        assert answer.status_code == 400, answer.text
        assert "not registered" in answer.text
        assert answer.headers["x-frame-options"] == "DENY"
    assert tandem.get("/smart/launch", follow_redirects=False).status_code == 400  # no iss at all
    assert forged.requests == [] and hospital.ehr.requests == []
    assert _launches(tandem, hospital.tenant) == []


def test_a_reused_code_and_a_replayed_callback_are_refused(tandem: TestClient, hospital: Hospital) -> None:
    hospital.ehr.patients["ehr-p2"] = ehr_patient("ehr-p2", hospital.mrn)
    callback = _to_callback(tandem, hospital, hospital.ehr.new_launch("ehr-p2"))
    assert tandem.get(callback, follow_redirects=False).status_code == 303
    tandem.cookies.clear()
    # the same callback again (its state spent), even with the state cookie put back
    state = parse_qs(urlsplit(callback).query)["state"][0]
    replay = tandem.get(callback, follow_redirects=False, headers={"Cookie": f"{STATE_COOKIE}={state}"})
    assert replay.status_code == 400 and "already used" in replay.text
    # a new launch's state with the old code: the EHR refuses the code, Tandem signs no one in
    fresh = _to_callback(tandem, hospital, hospital.ehr.new_launch("ehr-p2"))
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    fresh_state = parse_qs(urlsplit(fresh).query)["state"][0]
    reused = tandem.get(f"/smart/callback?code={old_code}&state={fresh_state}", follow_redirects=False)
    assert reused.status_code == 400 and "refused to exchange" in reused.text
    assert "code already used" in hospital.ehr.refusals
    assert COOKIE_NAME not in reused.cookies
    assert [launch.outcome for launch in _launches(tandem, hospital.tenant)].count("signed-in") == 1


def test_a_wrong_pkce_verifier_is_refused(tandem: TestClient, hospital: Hospital) -> None:
    hospital.ehr.patients["ehr-p3"] = ehr_patient("ehr-p3", hospital.mrn)
    callback = _to_callback(tandem, hospital, hospital.ehr.new_launch("ehr-p3"))
    state = parse_qs(urlsplit(callback).query)["state"][0]
    with Session(tandem.app.state.engine) as session:  # type: ignore[attr-defined]
        session.execute(
            update(SmartLaunch)
            .where(col(SmartLaunch.state_hash) == state_hash(state))
            .values(code_verifier="x" * 43)  # the verifier Tandem will send is not the one it gave the challenge of
        )
        session.commit()
    answer = tandem.get(callback, follow_redirects=False)
    assert answer.status_code == 400 and "refused to exchange" in answer.text
    assert "PKCE verifier does not match the challenge" in hospital.ehr.refusals
    assert COOKIE_NAME not in answer.cookies
    assert tandem.get(f"/patients/{hospital.patient_id}", follow_redirects=False).status_code == 303  # to sign-in


def test_a_tampered_unknown_or_expired_state_is_refused(tandem: TestClient, hospital: Hospital) -> None:
    hospital.ehr.patients["ehr-p4"] = ehr_patient("ehr-p4", hospital.mrn)
    callback = _to_callback(tandem, hospital, hospital.ehr.new_launch("ehr-p4"))
    query = parse_qs(urlsplit(callback).query)
    code, state = query["code"][0], query["state"][0]
    tampered = state[:-2] + ("AA" if not state.endswith("AA") else "BB")
    # the state in the URL is not the one this browser started
    answer = tandem.get(f"/smart/callback?code={code}&state={tampered}", follow_redirects=False)
    assert answer.status_code == 400 and "started in this browser" in answer.text
    # both changed alike: no such launch
    forged = tandem.get(
        f"/smart/callback?code={code}&state={tampered}",
        follow_redirects=False,
        headers={"Cookie": f"{STATE_COOKIE}={tampered}"},
    )
    assert forged.status_code == 400 and "unknown" in forged.text
    # a callback without any state, or from another browser (no cookie)
    assert tandem.get(f"/smart/callback?code={code}", follow_redirects=False).status_code == 400
    with TestClient(tandem.app, base_url=TANDEM) as other_browser:
        assert other_browser.get(callback, follow_redirects=False).status_code == 400
    # the real one, once it has expired
    with Session(tandem.app.state.engine) as session:  # type: ignore[attr-defined]
        row = session.exec(select(SmartLaunch).where(col(SmartLaunch.state_hash) == state_hash(state))).one()
        row.expires_at = row.created_at
        session.add(row)
        session.commit()
    expired = tandem.get(callback, follow_redirects=False)
    assert expired.status_code == 400 and "expired" in expired.text
    assert hospital.ehr.refusals == [] and not any(r.startswith("POST") for r in hospital.ehr.requests)


def test_a_launch_patient_tandem_does_not_know_is_refused_and_audited(tandem: TestClient, hospital: Hospital) -> None:
    hospital.ehr.patients["ehr-stranger"] = ehr_patient("ehr-stranger", "E-NOT-IN-TANDEM")
    answers = walk(tandem, _launch_url(hospital, hospital.ehr.new_launch("ehr-stranger", "Practitioner/dr-ng")))
    assert [a.status_code for a in answers] == [302, 302, 404]
    assert "not in Tandem" in answers[-1].text and COOKIE_NAME not in answers[-1].cookies
    # the refusal is readable where the launch runs: inside the registered EHR's frame, and no other
    assert f"frame-ancestors {EHR_ORIGIN};" in answers[-1].headers["content-security-policy"]
    (row,) = [r for r in _audit(tandem, hospital.tenant) if r.record_kind == "smart-launches"]
    assert (row.actor, row.outcome, row.status_code, row.patient_id) == (
        f"{hospital.ehr.iss}/Practitioner/dr-ng",
        "failure",
        404,
        None,
    )


def test_an_ehr_user_the_rules_give_no_role_is_refused(tandem: TestClient, hospital: Hospital) -> None:
    hospital.ehr.patients["ehr-p5"] = ehr_patient("ehr-p5", hospital.mrn)
    answers = walk(tandem, _launch_url(hospital, hospital.ehr.new_launch("ehr-p5", "Patient/ehr-p5")))
    assert answers[-1].status_code == 403 and "no role" in answers[-1].text
    (row,) = [r for r in _audit(tandem, hospital.tenant) if r.record_kind == "smart-launches"]
    assert (row.actor_role, row.outcome) == ("none", "failure")


def test_only_the_registered_ehr_origins_may_frame_and_only_a_launched_session(
    tandem: TestClient, hospital: Hospital, smart_settings: Settings
) -> None:
    hospital.ehr.patients["ehr-p6"] = ehr_patient("ehr-p6", hospital.mrn)
    walk(tandem, _launch_url(hospital, hospital.ehr.new_launch("ehr-p6")))
    page = tandem.get(f"/patients/{hospital.patient_id}")
    ancestors = page.headers["content-security-policy"].split("frame-ancestors ")[1].split(";")[0].split()
    assert ancestors == [EHR_ORIGIN]
    assert "https://ehr.attacker.example" not in page.headers["content-security-policy"]
    # an error page of the launched session is framed the same way; the API never is
    missing = tandem.get("/patients/no-such-patient")
    assert missing.status_code == 404 and f"frame-ancestors {EHR_ORIGIN};" in missing.headers["content-security-policy"]
    token = mint_dev_token(smart_settings, tenant=hospital.tenant, role="clinician")
    api = tandem.get("/api/v1/patients", headers={"Authorization": f"Bearer {token}"})
    assert api.headers["x-frame-options"] == "DENY"
    # the same clinician signed in the ordinary way: never framed
    tandem.cookies.clear()
    with TestClient(tandem.app, base_url=TANDEM) as browser:
        form = browser.get("/sign-in")
        csrf = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        signed = browser.post("/sign-in", data={"token": token, "csrf_token": csrf, "next": "/"})
        assert signed.status_code == 200, signed.text[:300]
        ordinary = browser.get(f"/patients/{hospital.patient_id}")
        assert ordinary.status_code == 200
        assert "frame-ancestors 'none'" in ordinary.headers["content-security-policy"]
        assert ordinary.headers["x-frame-options"] == "DENY"
        cookie = next(v for v in signed.history[0].headers.get_list("set-cookie") if v.startswith(COOKIE_NAME))
        assert "samesite=lax" in cookie.lower() and "partitioned" not in cookie.lower()


def test_the_launch_patient_is_found_by_the_id_the_sync_target_linked(
    tandem: TestClient, hospital: Hospital, smart_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EHR's id for a patient the tenant's sync target linked by MRN (service/sync/patient_links.py) is enough:
    the EHR serves no Patient here, so a match by MRN could not be what found it."""
    from service.records.patient import PatientCreate
    from service.records.sync_target import SyncTarget
    from service.sync.patient_links import link_pulled_patient
    from tests.builders import patient_body
    from tests.smart_launch.conftest import CALLBACK, CLIENT_ID, MRN_SYSTEM, register_with_cli

    admin = {"Authorization": f"Bearer {mint_dev_token(smart_settings, tenant=hospital.tenant, role='admin')}"}
    target = tandem.post(
        "/api/v1/sync/targets", json={"name": "Epic prod", "base_url": hospital.ehr.iss}, headers=admin
    )
    assert target.status_code == 201, target.text
    with Session(tandem.app.state.engine) as session:  # type: ignore[attr-defined]
        row = session.get(SyncTarget, target.json()["id"])
        assert row is not None
        pulled = PatientCreate.model_validate(patient_body(identifiers=[{"system": MRN_SYSTEM, "value": hospital.mrn}]))
        linked = link_pulled_patient(session, row, pulled, {"resourceType": "Patient", "id": "ehr-linked-9"})
        assert linked is not None and linked.id == hospital.patient_id
        session.commit()
    code, said = register_with_cli(
        monkeypatch,
        smart_settings.database_url,
        hospital.tenant,
        hospital.ehr.iss,
        "--client-id",
        CLIENT_ID,
        "--redirect-uri",
        CALLBACK,
        "--role",
        "Practitioner=clinician",
        "--target",
        "Epic prod",
    )
    assert code == 0 and "patients found through target" in said, said
    answers = walk(tandem, _launch_url(hospital, hospital.ehr.new_launch("ehr-linked-9")))
    assert answers[-2].headers["location"] == f"/patients/{hospital.patient_id}", answers[-2].text
    assert answers[-1].status_code == 200
    assert not any("/Patient/" in r for r in hospital.ehr.requests)


def test_signing_out_inside_the_ehr_frame_replaces_the_embedded_cookie(tandem: TestClient, hospital: Hospital) -> None:
    hospital.ehr.patients["ehr-p7"] = ehr_patient("ehr-p7", hospital.mrn)
    page = walk(tandem, _launch_url(hospital, hospital.ehr.new_launch("ehr-p7")))[-1]
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    out = tandem.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    cookie = next(v for v in out.headers.get_list("set-cookie") if v.startswith(f"{COOKIE_NAME}=")).lower()
    assert "samesite=none" in cookie and "partitioned" in cookie and "secure" in cookie
    assert tandem.get(f"/patients/{hospital.patient_id}", follow_redirects=False).status_code == 303  # to sign-in
