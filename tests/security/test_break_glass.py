"""Restricted patients and break-the-glass access.

A patient the hospital marks restricted (confidentiality R) must be invisible to every person on every read path —
the JSON API (read, list, update, resend), the FHIR facade (read, vread, history, search, _include, conditional
create, Bundle entries), plan status, the caseload and the pages — while the hospital's EHR system still sees it. A
clinician who breaks the glass (a reason, a time box) sees that one patient until the grant ends or expires, and
the start, everything read under it and the end are audit rows with purpose BTG.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service.break_glass.expiry import sweep_expired_grants
from service.break_glass.tables import BreakGlassGrant
from service.records.audit import AuditEvent
from service.settings import Settings
from tests.builders import API, PATIENT_RECORD_BODIES, ApiDriver, patient_body, sync_target_body
from tests.fhir.support import patient_resource
from tests.security.support import page_cookie

FHIR_JSON = "application/fhir+json"
REASON = "admitted unconscious to the emergency department; the on-call psychiatrist needs the treatment history"
# FHIR types holding a patient's data, with the record kind behind each (derived ones have none).
FHIR_TYPES = ("Patient", "MedicationAdministration", "Encounter", "QuestionnaireResponse", "Observation", "CarePlan")
Headers = Callable[..., dict[str, str]]


def _patient_with_records(ehr: ApiDriver, *, restricted: bool) -> dict[str, str]:
    patient_id = ehr.patient(restricted=restricted)
    ids = {"patients": patient_id}
    for path, build in PATIENT_RECORD_BODIES.items():
        ids[path] = str(ehr.create(path, build(patient_id))["id"])
    return ids


@pytest.fixture
def clinic(client: TestClient, tenant: str, auth: Headers) -> dict[str, dict[str, str]]:
    ehr = ApiDriver(client, auth(tenant, "ehr-system"))
    return {
        "restricted": _patient_with_records(ehr, restricted=True),
        "open": _patient_with_records(ehr, restricted=False),
    }


def _fhir_ids(client: TestClient, headers: dict[str, str], patient_id: str) -> list[str]:
    """Every FHIR resource id about the patient, as the EHR system sees them."""
    found = []
    for resource_type in FHIR_TYPES:
        params = {"_id": patient_id} if resource_type == "Patient" else {"patient": patient_id, "_count": "200"}
        bundle = client.get(f"/fhir/{resource_type}", params=params, headers=headers).json()
        found += [f"{resource_type}/{e['resource']['id']}" for e in bundle.get("entry", [])]
    return found


def _audit_rows(engine: Engine, tenant: str, patient_id: str) -> list[AuditEvent]:
    with Session(engine) as session:
        query = select(AuditEvent).where(col(AuditEvent.tenant_id) == tenant, col(AuditEvent.patient_id) == patient_id)
        return list(session.exec(query.order_by(col(AuditEvent.occurred_at))))


def _probe_every_read_path(
    client: TestClient, headers: dict[str, str], clinic: dict[str, dict[str, str]], fhir_ids: list[str]
) -> dict[str, int]:
    """Status of each direct read of the restricted patient's data, and every list/search checked for it."""
    hidden = clinic["restricted"]
    patient_id = hidden["patients"]
    answers: dict[str, int] = {}
    for path, record_id in hidden.items():
        answers[f"GET {path}/id"] = client.get(f"{API}/{path}/{record_id}", headers=headers).status_code
        listed = client.get(f"{API}/{path}", params={"limit": 200}, headers=headers)
        assert listed.status_code == 200
        assert record_id not in listed.text, f"the {path} list shows a restricted patient's record"
        answers[f"GET {path}?patient_id"] = client.get(
            f"{API}/{path}", params={"patient_id": patient_id}, headers=headers
        ).status_code
    answers["GET plan-status"] = client.get(f"{API}/patients/{patient_id}/plan-status", headers=headers).status_code
    caseload = client.get(f"{API}/caseload", params={"page_size": 200}, headers=headers)
    assert caseload.status_code == 200 and patient_id not in caseload.text, "the caseload shows a restricted patient"
    fhir = {**headers, "Accept": FHIR_JSON}
    for reference in fhir_ids:
        answers[f"GET {reference}"] = client.get(f"/fhir/{reference}", headers=fhir).status_code
        answers[f"GET {reference}/_history"] = client.get(f"/fhir/{reference}/_history", headers=fhir).status_code
        answers[f"GET {reference}/_history/1"] = client.get(f"/fhir/{reference}/_history/1", headers=fhir).status_code
    for resource_type in FHIR_TYPES:
        searched = client.get(f"/fhir/{resource_type}", params={"_count": "200"}, headers=fhir)
        assert searched.status_code == 200
        assert patient_id not in searched.text, f"a {resource_type} search shows a restricted patient's data"
        if resource_type != "Patient":
            included = client.get(
                f"/fhir/{resource_type}", params={"_include": f"{resource_type}:patient", "_count": "200"}, headers=fhir
            )
            assert included.status_code == 200 and patient_id not in included.text
            answers[f"GET {resource_type}?patient"] = client.get(
                f"/fhir/{resource_type}", params={"patient": patient_id}, headers=fhir
            ).status_code
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": reference}} for reference in fhir_ids],
    }
    answered = client.post("/fhir", json=batch, headers={**fhir, "Content-Type": FHIR_JSON}).json()
    for reference, entry in zip(fhir_ids, answered["entry"], strict=True):
        answers[f"Bundle GET {reference}"] = int(entry["response"]["status"].split()[0])
        assert entry.get("resource", {}).get("resourceType") in (None, "OperationOutcome"), entry  # no data back
    return answers


def test_a_restricted_patient_is_hidden_on_every_read_path(
    client: TestClient, tenant: str, auth: Headers, clinic: dict[str, dict[str, str]]
) -> None:
    ehr = auth(tenant, "ehr-system")
    fhir_ids = _fhir_ids(client, ehr, clinic["restricted"]["patients"])
    assert len(fhir_ids) >= 6, fhir_ids
    probes = 0
    for role in ("clinician", "coordinator"):
        answers = _probe_every_read_path(client, auth(tenant, role), clinic, fhir_ids)
        leaks = {name: status for name, status in answers.items() if status != 403}
        assert not leaks, f"{role}: restricted data answered other than 403: {leaks}"
        probes += len(answers)
    # The EHR system owns the record: it reads everything, and the open patient stays readable for everyone.
    ehr_answers = {r: client.get(f"/fhir/{r}", headers={**ehr, "Accept": FHIR_JSON}).status_code for r in fhir_ids}
    assert set(ehr_answers.values()) == {200}, ehr_answers
    open_patient = clinic["open"]["patients"]
    assert client.get(f"{API}/patients/{open_patient}", headers=auth(tenant, "coordinator")).status_code == 200
    print(f"\n[break the glass] {probes} reads of a restricted patient by clinician/coordinator: all 403, leaks 0")


def test_a_refused_read_names_the_way_in_and_is_audited(
    client: TestClient, engine: Engine, tenant: str, auth: Headers, clinic: dict[str, dict[str, str]]
) -> None:
    patient_id = clinic["restricted"]["patients"]
    response = client.get(f"{API}/patients/{patient_id}", headers=auth(tenant, "clinician", subject="dr-refused"))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert f"/api/v1/patients/{patient_id}/break-the-glass" in response.json()["detail"]
    fhir = client.get(f"/fhir/Patient/{patient_id}", headers={**auth(tenant, "clinician"), "Accept": FHIR_JSON})
    assert fhir.status_code == 403 and fhir.json()["resourceType"] == "OperationOutcome"
    refused = [r for r in _audit_rows(engine, tenant, patient_id) if r.actor == "dr-refused"]
    assert [(r.action, r.outcome, r.status_code) for r in refused] == [("read", "failure", 403)]


def test_writes_cannot_reach_or_reveal_a_restricted_patient(
    client: TestClient, tenant: str, auth: Headers, clinic: dict[str, dict[str, str]]
) -> None:
    clinician = auth(tenant, "clinician")
    hidden = clinic["restricted"]
    patient_id = hidden["patients"]
    # a new record for the patient, a PATCH of one of theirs, a resend of the EHR's record, a conditional create
    for path, build in PATIENT_RECORD_BODIES.items():
        assert client.post(f"{API}/{path}", json=build(patient_id), headers=clinician).status_code == 403
    etag = client.get(f"{API}/cbt-sessions/{hidden['cbt-sessions']}", headers=auth(tenant, "ehr-system")).headers[
        "etag"
    ]
    patched = client.patch(
        f"{API}/cbt-sessions/{hidden['cbt-sessions']}",
        json={"status": "cancelled"},
        headers={**clinician, "If-Match": etag},
    )
    assert patched.status_code == 403
    ehr = auth(tenant, "ehr-system")
    stored = client.get(f"/fhir/Patient/{patient_id}", headers={**ehr, "Accept": FHIR_JSON}).json()
    identifier = stored["identifier"][0]
    conditional = client.post(
        "/fhir/Patient",
        json=patient_resource(),
        headers={
            **clinician,
            "Content-Type": FHIR_JSON,
            "If-None-Exist": f"identifier={identifier['system']}|{identifier['value']}",
        },
    )
    # refused with the way in (the id is needed to break the glass), but nothing of the record itself
    assert conditional.status_code == 403 and conditional.json()["resourceType"] == "OperationOutcome"
    assert stored["name"][0]["family"] not in conditional.text and identifier["value"] not in conditional.text


def test_breaking_the_glass_opens_one_patient_to_one_clinician_until_it_ends(
    client: TestClient, engine: Engine, tenant: str, auth: Headers, clinic: dict[str, dict[str, str]]
) -> None:
    patient_id = clinic["restricted"]["patients"]
    doctor = auth(tenant, "clinician", subject="dr-on-call")
    colleague = auth(tenant, "clinician", subject="dr-colleague")
    url = f"{API}/patients/{patient_id}/break-the-glass"
    # refused: no reason, a blank one, too long, by a coordinator, for an unrestricted or missing patient
    assert client.post(url, json={}, headers=doctor).status_code == 422
    blank = client.post(url, json={"reason": "   "}, headers=doctor)
    assert blank.status_code == 422 and "reason" in blank.text
    too_long = client.post(url, json={"reason": REASON, "minutes": 241}, headers=doctor)
    assert too_long.status_code == 422 and "minutes" in too_long.text
    assert client.post(url, json={"reason": REASON}, headers=auth(tenant, "coordinator")).status_code == 403
    open_url = f"{API}/patients/{clinic['open']['patients']}/break-the-glass"
    assert client.post(open_url, json={"reason": REASON}, headers=doctor).status_code == 409
    assert (
        client.post(
            f"{API}/patients/{uuid.uuid4()}/break-the-glass", json={"reason": REASON}, headers=doctor
        ).status_code
        == 404
    )
    with Session(engine) as session:
        assert session.exec(select(BreakGlassGrant).where(col(BreakGlassGrant.tenant_id) == tenant)).first() is None

    before = datetime.now(UTC)
    started = client.post(url, json={"reason": REASON, "minutes": 30}, headers=doctor)
    assert started.status_code == 201, started.text
    grant = started.json()
    assert grant["active"] and grant["reason"] == REASON and grant["subject"] == "dr-on-call"
    expires = datetime.fromisoformat(grant["expires_at"])
    assert before + timedelta(minutes=29) < expires <= datetime.now(UTC) + timedelta(minutes=30)

    # the doctor now reads the patient everywhere; the colleague still does not
    assert client.get(f"{API}/patients/{patient_id}", headers=doctor).status_code == 200
    assert client.get(f"/fhir/Patient/{patient_id}", headers={**doctor, "Accept": FHIR_JSON}).status_code == 200
    caseload = client.get(f"{API}/caseload", params={"page_size": 200}, headers=doctor).text
    assert patient_id in caseload
    assert client.get(f"{API}/patients/{patient_id}", headers=colleague).status_code == 403

    # audited: the start (purpose BTG, no clinical text), then each read under the grant carries BTG too
    rows = [r for r in _audit_rows(engine, tenant, patient_id) if r.actor == "dr-on-call"]
    attempts = [r for r in rows if r.record_kind == "break-glass" and r.action == "create"]
    assert [r.status_code for r in attempts if r.outcome == "failure"] == [422]  # too long: refused in the service
    start = next(r for r in attempts if r.outcome == "success")
    assert (start.action, start.purpose, start.record_id, start.status_code) == ("create", "BTG", grant["id"], 201)
    reads = [r for r in rows if r.action in ("read", "list") and r.outcome == "success"]
    assert reads and all(r.purpose == "BTG" for r in reads)
    # the privacy officer sees the grant with its reason, and the FHIR AuditEvent says purposeOfEvent BTG
    review = client.get(f"{API}/break-glass-grants", headers=auth(tenant, "admin")).json()
    assert [(g["id"], g["reason"]) for g in review] == [(grant["id"], REASON)]
    assert client.get(f"{API}/break-glass-grants", headers=colleague).json() == []
    events = client.get(
        "/fhir/AuditEvent", params={"patient": patient_id}, headers={**auth(tenant, "admin"), "Accept": FHIR_JSON}
    ).json()
    purposes = [
        e["resource"].get("purposeOfEvent")
        for e in events["entry"]
        if e["resource"]["agent"][0]["who"]["identifier"]["value"] == "dr-on-call"
    ]
    assert all(
        p
        == [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": "BTG",
                        "display": "break the glass",
                    }
                ]
            }
        ]
        for p in purposes
    )
    assert REASON not in str(events), "the reason stays on the grant; audit rows hold ids and codes only"

    # only its holder ends it; ending it again changes nothing
    end_url = f"{API}/break-glass-grants/{grant['id']}/end"
    assert client.post(end_url, headers=colleague).status_code == 404
    ended = client.post(end_url, headers=doctor)
    assert ended.status_code == 200 and not ended.json()["active"] and ended.json()["end_reason"] == "ended"
    assert client.post(end_url, headers=doctor).status_code == 200
    ends = [
        r for r in _audit_rows(engine, tenant, patient_id) if r.record_kind == "break-glass" and r.action == "update"
    ]
    assert len(ends) == 1 and ends[0].purpose == "BTG"
    assert client.get(f"{API}/patients/{patient_id}", headers=doctor).status_code == 403


def test_an_expired_grant_hides_the_patient_again_and_its_end_is_audited_once(
    client: TestClient, engine: Engine, tenant: str, auth: Headers, clinic: dict[str, dict[str, str]]
) -> None:
    patient_id = clinic["restricted"]["patients"]
    doctor = auth(tenant, "clinician", subject="dr-night")
    grant = client.post(
        f"{API}/patients/{patient_id}/break-the-glass", json={"reason": REASON, "minutes": 15}, headers=doctor
    ).json()
    assert client.get(f"{API}/patients/{patient_id}", headers=doctor).status_code == 200
    expired_at = datetime.now(UTC) - timedelta(seconds=1)
    with Session(engine) as session:  # time passes: the grant's end is in the past
        session.execute(
            update(BreakGlassGrant).where(col(BreakGlassGrant.id) == grant["id"]).values(expires_at=expired_at)
        )
        session.commit()
    assert client.get(f"{API}/patients/{patient_id}", headers=doctor).status_code == 403  # refused: rolled back
    # the next access that succeeds closes the grant in its transaction (else the sweep does); twice, audited once
    for _ in range(2):
        listed = client.get(f"{API}/patients", params={"limit": 200}, headers=doctor)
        assert listed.status_code == 200 and patient_id not in listed.text
    assert sweep_expired_grants(engine, datetime.now(UTC)) == 0  # already closed
    with Session(engine) as session:
        stored = session.get(BreakGlassGrant, grant["id"])
        assert stored is not None and stored.end_reason == "expired"
        assert abs((stored.ended_at - expired_at).total_seconds()) < 1  # type: ignore[operator]
    ends = [
        r for r in _audit_rows(engine, tenant, patient_id) if r.record_kind == "break-glass" and r.action == "update"
    ]
    assert [(r.actor, r.purpose, r.request_id) for r in ends] == [("dr-night", "BTG", "expiry")]


def test_the_sweep_closes_grants_nobody_touched_again(
    client: TestClient, engine: Engine, tenant: str, auth: Headers, clinic: dict[str, dict[str, str]]
) -> None:
    patient_id = clinic["restricted"]["patients"]
    doctor = auth(tenant, "clinician", subject="dr-sweep")
    grant = client.post(f"{API}/patients/{patient_id}/break-the-glass", json={"reason": REASON}, headers=doctor).json()
    assert datetime.fromisoformat(grant["expires_at"]) - datetime.fromisoformat(grant["started_at"]) == timedelta(
        minutes=60
    )
    assert sweep_expired_grants(engine, datetime.now(UTC)) == 0  # not yet
    assert sweep_expired_grants(engine, datetime.now(UTC) + timedelta(minutes=61)) >= 1
    with Session(engine) as session:
        stored = session.get(BreakGlassGrant, grant["id"])
        assert stored is not None and stored.end_reason == "expired"


def test_only_the_hospital_ehr_lifts_a_restriction(
    client: TestClient, tenant: str, auth: Headers, clinic: dict[str, dict[str, str]]
) -> None:
    patient_id = clinic["restricted"]["patients"]
    doctor = auth(tenant, "clinician", subject="dr-lift")
    client.post(f"{API}/patients/{patient_id}/break-the-glass", json={"reason": REASON}, headers=doctor)
    read = client.get(f"{API}/patients/{patient_id}", headers=doctor)
    assert read.status_code == 200 and read.json()["restricted"] is True
    lifted = client.patch(
        f"{API}/patients/{patient_id}", json={"restricted": False}, headers={**doctor, "If-Match": read.headers["etag"]}
    )
    assert lifted.status_code == 403 and "EHR" in lifted.json()["detail"]
    ehr = auth(tenant, "ehr-system")
    assert client.get(f"{API}/patients/{patient_id}", headers=ehr).json()["restricted"] is True
    lifted = client.patch(
        f"{API}/patients/{patient_id}", json={"restricted": False}, headers={**ehr, "If-Match": read.headers["etag"]}
    )
    assert lifted.status_code == 200
    assert client.get(f"{API}/patients/{patient_id}", headers=auth(tenant, "coordinator")).status_code == 200
    # anyone who may write a patient may restrict one — and then, without a grant, no longer reads it
    created = ApiDriver(client, doctor).create("patients", patient_body(restricted=True))
    assert (
        client.get(f"{API}/patients/{created['id']}", headers=auth(tenant, "clinician", subject="dr-other")).status_code
        == 403
    )


def test_the_fhir_security_label_round_trips(client: TestClient, tenant: str, auth: Headers) -> None:
    ehr = {**auth(tenant, "ehr-system"), "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    label = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    resource: dict[str, Any] = {**patient_resource(), "meta": {"security": [label]}}
    created = client.post("/fhir/Patient", json=resource, headers=ehr)
    assert created.status_code == 201, created.text
    stored = created.json()
    assert [{k: s[k] for k in ("system", "code")} for s in stored["meta"]["security"]] == [label]
    assert client.get(f"{API}/patients/{stored['id']}", headers=ehr).json()["restricted"] is True
    assert (
        client.get(
            f"/fhir/Patient/{stored['id']}", headers={**auth(tenant, "clinician"), "Accept": FHIR_JSON}
        ).status_code
        == 403
    )
    very = {**patient_resource(), "meta": {"security": [{**label, "code": "V"}]}}
    assert client.post("/fhir/Patient", json=very, headers=ehr).json()["meta"]["security"][0]["code"] == "R"
    normal = client.post("/fhir/Patient", json=patient_resource(), headers=ehr).json()
    assert "security" not in normal["meta"]


def test_the_pages_offer_a_clinician_the_glass_and_nobody_else(
    client: TestClient, settings: Settings, tenant: str, clinic: dict[str, dict[str, str]]
) -> None:
    patient_id = clinic["restricted"]["patients"]
    cookie, csrf = page_cookie(settings, tenant, "coordinator")
    page = client.get(f"/patients/{patient_id}", cookies=cookie)
    assert page.status_code == 403 and "Restricted patient" in page.text and "break-glass-form" not in page.text
    client.cookies.clear()
    cookie, csrf = page_cookie(settings, tenant, "clinician")
    page = client.get(f"/patients/{patient_id}", cookies=cookie)
    assert page.status_code == 403 and 'id="break-glass-form"' in page.text
    url = f"/patients/{patient_id}/break-the-glass"
    blank = client.post(
        url, data={"csrf_token": csrf, "reason": " ", "minutes": "30"}, cookies=cookie, follow_redirects=False
    )
    assert blank.status_code == 422 and "reason is required" in blank.text
    no_csrf = client.post(url, data={"reason": REASON, "minutes": "30"}, cookies=cookie, follow_redirects=False)
    assert no_csrf.status_code == 403
    opened = client.post(
        url, data={"csrf_token": csrf, "reason": REASON, "minutes": "30"}, cookies=cookie, follow_redirects=False
    )
    assert opened.status_code == 303 and opened.headers["location"] == f"/patients/{patient_id}"
    page = client.get(f"/patients/{patient_id}", cookies=cookie)
    assert page.status_code == 200 and 'id="break-glass-notice"' in page.text
    client.cookies.clear()


def test_an_admin_dry_run_does_not_show_a_restricted_patients_record(
    client: TestClient, tenant: str, auth: Headers, clinic: dict[str, dict[str, str]]
) -> None:
    admin = auth(tenant, "admin")
    target = ApiDriver(client, admin).create("sync/targets", sync_target_body())["id"]
    for kind, record_id in clinic["restricted"].items():
        body = {"record_kind": kind, "record_id": record_id}
        answer = client.post(f"{API}/sync/targets/{target}/dry-run", json=body, headers=admin)
        assert answer.status_code == 403, f"{kind}: {answer.status_code} {answer.text[:200]}"
        assert "restricted" in answer.json()["detail"]
