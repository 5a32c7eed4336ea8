"""Urgent findings back to the EHR, by what it takes (issue #20, part 3): against sekmet-fhir (takes everything), and
against sekmet behind Epic's and Oracle Health's CapabilityStatements. An item-9 positive PHQ-9 becomes one
Communication per occurrence (completed once a clinician acknowledges it, where the EHR takes updates) and one
progress note, updated, never duplicated. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from service.audit_trail import RequestContext
from service.auth.principal import Principal
from service.db.unit_of_work import unit_of_work
from service.outbox import OutboxMessage
from service.sync.backfill import backfill
from service.sync.pull import pull
from tests.builders import PHQ9_ITEMS, ApiDriver, enrollment_body, patient_body, practitioner_body, questionnaire_body
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.ehr_peer.strict_ehr import StrictEhr, epic_statement
from tests.sync import ehr_shaped
from tests.sync.sync_harness import SyncApp, all_resources, drain, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
ALERTS = ["urgent-findings", "progress-notes"]


def phq9(patient_id: str, item9: int, days_ago: float = 1) -> dict[str, object]:
    answers = [{"link_id": i, "value_integer": 1} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    authored = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return questionnaire_body(patient_id, answers=answers, authored_at=authored)


def enrolled(api: ApiDriver, admin: ApiDriver, **patient: Any) -> tuple[str, str, str]:
    """A patient enrolled three days ago with a coordinator: (patient id, enrollment id, coordinator id)."""
    coordinator = admin.create("practitioners", practitioner_body(role="coordinator"))["id"]
    patient_id = api.create("patients", patient_body(**patient))["id"]
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    body = enrollment_body(patient_id, start_date=start, coordinator_id=coordinator)
    return patient_id, api.create("enrollments", body)["id"], coordinator


def ours(sync_app: SyncApp, resources: list[dict[str, Any]], kind: str, enrollment_id: str) -> list[dict[str, Any]]:
    system = f"{sync_app.settings.canonical_base}/identifier/{kind}"
    return [
        r
        for r in resources
        if any(
            i.get("system") == system and i["value"].startswith(f"{enrollment_id}/") for i in r.get("identifier", [])
        )
    ]


def acknowledge(api: ApiDriver, patient_id: str, enrollment_id: str) -> None:
    status = api.client.get(f"/api/v1/patients/{patient_id}/plan-status", headers=api.headers).json()
    [reason] = [r for r in status["statuses"][0]["reasons"] if r["code"] == "phq9_item9_positive"]
    body = {
        "enrollment_id": enrollment_id,
        "code": reason["code"],
        "occurrence_id": reason["occurrence_id"],
        "note": "Called; safety plan done.",
    }
    answer = api.client.post(f"/api/v1/patients/{patient_id}/flag-acknowledgements", json=body, headers=api.headers)
    assert answer.status_code == 201, answer.text


def dry_run(admin: ApiDriver, target: str, kind: str, record_id: str) -> tuple[str, list[str]]:
    """The dry run's mapping and its requests as "METHOD Type"."""
    body = {"record_kind": kind, "record_id": record_id}
    answer = admin.client.post(f"/api/v1/sync/targets/{target}/dry-run", json=body, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    paths = [(r["method"], r["url"].split("/fhir/", 1)[1].split("?")[0].split("/")[0]) for r in found["requests"]]
    return found["mapping"], [f"{method} {kind}" for method, kind in paths]


def note_text(note: dict[str, Any], content_type: str) -> str:
    [attachment] = [c["attachment"] for c in note["content"] if c["attachment"]["contentType"].startswith(content_type)]
    return base64.b64decode(attachment["data"]).decode()


def test_an_item_9_answer_reaches_a_fhir_server_as_one_message_one_flag_and_one_note(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, sekmet.base_url, push=["patients", "questionnaire-responses", *ALERTS])
    api, admin = sync_app.driver(tenant), sync_app.driver(tenant, "admin")
    patient_id, enrollment_id, coordinator = enrolled(api, admin)
    assert dry_run(admin, target, "urgent-findings", enrollment_id) == ("natural", [])  # nothing owed yet
    drain(sync_app, tenant)
    with sekmet.client() as peer:
        assert ours(sync_app, all_resources(peer, "Communication"), "urgent-finding", enrollment_id) == []
        [first_note] = ours(sync_app, all_resources(peer, "DocumentReference"), "progress-note", enrollment_id)
    assert "Plan status: " in note_text(first_note, "text/plain") and "Urgent" not in note_text(
        first_note, "text/plain"
    )

    response_id = api.create("questionnaire-responses", phq9(patient_id, item9=2))["id"]
    mapping, requests = dry_run(admin, target, "urgent-findings", enrollment_id)
    assert mapping == "natural" and {"POST Communication", "POST Flag"} <= set(requests)
    drain(sync_app, tenant)
    drain(sync_app, tenant)  # a second pass sends nothing new
    with sekmet.client() as peer:
        [message] = ours(sync_app, all_resources(peer, "Communication"), "urgent-finding", enrollment_id)
        [flag] = [f for f in all_resources(peer, "Flag") if f["identifier"][0]["value"].startswith(enrollment_id)]
        [note] = ours(sync_app, all_resources(peer, "DocumentReference"), "progress-note", enrollment_id)
        mrn = api.client.get(f"/api/v1/patients/{patient_id}", headers=api.headers).json()["identifiers"][0]["value"]
        [their_patient] = [p for p in all_resources(peer, "Patient") if mrn in str(p["identifier"])]
    assert message["status"] == "in-progress" and message["priority"] == "urgent"
    assert message["category"][0]["coding"][0]["code"] == "alert"
    assert (
        message["subject"] == {"reference": f"Patient/{their_patient['id']}"} != {"reference": f"Patient/{patient_id}"}
    )
    assert message["recipient"] == [{"reference": f"Practitioner/{coordinator}"}]
    assert message["about"] == [
        {"reference": f"{sync_app.settings.canonical_base}/QuestionnaireResponse/{response_id}"}
    ]
    assert "suicide-risk pathway" in message["payload"][0]["contentString"]
    assert flag["status"] == "active"
    assert note["id"] == first_note["id"] and int(note["meta"]["versionId"]) > int(first_note["meta"]["versionId"])
    plain = note_text(note, "text/plain")
    assert "Plan status: At risk" in plain and "Urgent: " in plain and "PHQ-9" in plain
    assert "<p>Plan status: At risk" in note_text(note, "text/html")

    acknowledge(api, patient_id, enrollment_id)
    drain(sync_app, tenant)
    with sekmet.client() as peer:
        [closed] = ours(sync_app, all_resources(peer, "Communication"), "urgent-finding", enrollment_id)
        [flag] = [f for f in all_resources(peer, "Flag") if f["identifier"][0]["value"].startswith(enrollment_id)]
        [last_note] = ours(sync_app, all_resources(peer, "DocumentReference"), "progress-note", enrollment_id)
    assert closed["id"] == message["id"] and closed["status"] == "completed"
    assert "Closed" in closed["payload"][0]["contentString"]
    assert flag["status"] == "inactive"
    assert last_note["id"] == note["id"] and "Plan status: At risk" not in note_text(last_note, "text/plain")


def test_epic_gets_one_message_it_keeps_and_one_note_it_updates(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    """Epic creates Communications (searchable by identifier) but takes no update of them and no Flag at all; it
    creates and updates DocumentReferences. The patient is Epic's own, linked by MRN through the pull."""
    tenant = sync_app.tenant()
    mrn_system, mrn = f"urn:oid:1.2.840.114350.{uuid.uuid4().int % 10**8}", f"{uuid.uuid4().int % 10**9}"
    api, admin = sync_app.driver(tenant), sync_app.driver(tenant, "admin")
    patient_id, enrollment_id, _ = enrolled(api, admin, identifiers=[{"system": mrn_system, "value": mrn}])
    with sekmet.client() as peer:
        epic_patient = peer.post("Patient", json=ehr_shaped.patient(mrn_system, mrn)).json()["id"]
    with StrictEhr(sekmet.root_url, epic_statement(), require_patient=False) as ehr:
        target = sync_app.target(
            tenant,
            ehr.url("/fhir"),
            push=["questionnaire-responses", *ALERTS],
            pull=["patients"],
            mrn_system=mrn_system,
        )
        pull(sync_app.engine, sync_app.settings, target)  # links our patient to Epic's
        api.create("questionnaire-responses", phq9(patient_id, item9=1))
        drain(sync_app, tenant)
        assert ehr.refused() == [], ehr.refusals
        with sekmet.client() as peer:
            [message] = ours(sync_app, all_resources(peer, "Communication"), "urgent-finding", enrollment_id)
            [note] = ours(sync_app, all_resources(peer, "DocumentReference"), "progress-note", enrollment_id)
            flags = [f for f in all_resources(peer, "Flag") if str(f.get("identifier")).count(enrollment_id)]
        assert flags == []
        assert message["subject"] == {"reference": f"Patient/{epic_patient}"} == note["subject"]
        assert message["status"] == "in-progress" and "Plan status: At risk" in note_text(note, "text/plain")

        acknowledge(api, patient_id, enrollment_id)
        drain(sync_app, tenant)
        assert ehr.refused() == [], ehr.refusals  # no PUT of a Communication, no Flag create
    with sekmet.client() as peer:
        [kept] = ours(sync_app, all_resources(peer, "Communication"), "urgent-finding", enrollment_id)
        [updated] = ours(sync_app, all_resources(peer, "DocumentReference"), "progress-note", enrollment_id)
    assert kept["id"] == message["id"] and kept["status"] == "in-progress"  # Epic keeps its copy
    assert updated["id"] == note["id"] and "Plan status: At risk" not in note_text(updated, "text/plain")
    with Session(sync_app.engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.tenant_id) == tenant, col(OutboxMessage.record_kind) == "urgent-findings"
            )
        ).all()
    assert {r.status for r in rows} == {"sent"}
    assert any("accepts no Communication updates; its copy was kept" in str(r.last_error) for r in rows)


def test_a_backfill_queues_each_enrollments_findings_and_note_once(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    """Written before the target existed: the backfill queues the alert kinds per enrollment (once: a second run
    queues nothing); a plan with no urgent finding owes the target nothing and its row is done, not refused."""
    tenant = sync_app.tenant()
    api, admin = sync_app.driver(tenant), sync_app.driver(tenant, "admin")
    at_risk_patient, at_risk, _ = enrolled(api, admin)
    api.create("questionnaire-responses", phq9(at_risk_patient, item9=3))
    _, calm, _ = enrolled(api, admin)
    target = sync_app.target(tenant, sekmet.base_url, push=["patients", *ALERTS])
    principal = Principal(subject="test-backfill", tenant_id=tenant, role="admin", scopes=None, client_id=None)
    ctx = RequestContext(principal=principal, request_id=str(uuid.uuid4()), settings=sync_app.settings)
    with unit_of_work(sync_app.engine) as session:
        first = backfill(session, ctx, target)
    with unit_of_work(sync_app.engine) as session:
        again = backfill(session, ctx, target)
    assert first.queued == {"patients": 2, "urgent-findings": 2, "progress-notes": 2}
    assert again.total_queued == 0
    drain(sync_app, tenant)
    with Session(sync_app.engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.tenant_id) == tenant, col(OutboxMessage.record_kind) == "urgent-findings"
            )
        ).all()
    assert {r.status for r in rows} == {"sent"}
    [nothing] = [r for r in rows if r.record_id == calm]
    assert "nothing to send" in str(nothing.last_error)
    with sekmet.client() as peer:
        messages = all_resources(peer, "Communication")
        notes = all_resources(peer, "DocumentReference")
    assert len(ours(sync_app, messages, "urgent-finding", at_risk)) == 1
    assert ours(sync_app, messages, "urgent-finding", calm) == []
    assert all(len(ours(sync_app, notes, "progress-note", e)) == 1 for e in (at_risk, calm))
