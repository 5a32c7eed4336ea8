"""Push and pull against a real FHIR peer (sekmet-fhir on 127.0.0.1), on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import Session, col, select

from service.outbox import OutboxMessage
from service.sync import status as sync_status
from service.sync.processing import Processor
from service.sync.pull import pull
from service.sync.tables import SyncAttempt
from tests.builders import administration_body, questionnaire_body
from tests.ehr_peer.fault_proxy import Fault, FaultPlan, FaultProxy, FaultRule
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.shared_fixtures import load_fixture
from tests.sync.sync_harness import (
    SyncApp,
    all_resources,
    check_peer_holds_exactly_one_copy,
    drain,
    outbox_rows,
    pull_cache,
    push_mixed_records,
    seeded_cache,
    sync_app_fixture,
)

# Mixed records pushed in the basic test; TANDEM_SYNC_HEAVY=1 pushes the 500.
RECORD_COUNT = 500 if os.environ.get("TANDEM_SYNC_HEAVY") == "1" else 50
sekmet = sekmet_fixture()
sync_app = sync_app_fixture()


def test_mixed_records_reach_the_peer_exactly_once(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, sekmet.base_url)
    records = push_mixed_records(sync_app.driver(tenant), RECORD_COUNT)
    stats = drain(sync_app, tenant)
    rows = outbox_rows(sync_app.engine, tenant)
    assert len(rows) == RECORD_COUNT
    assert {r.status for r in rows} == {"sent"}, [
        (r.record_kind, r.status, r.last_error) for r in rows if r.status != "sent"
    ]
    qr_rows = [r for r in rows if r.record_kind == "questionnaire-responses"]
    assert all("score as Observations only" in (r.last_error or {}).get("note", "") for r in qr_rows)
    with sekmet.client() as peer:
        found = check_peer_holds_exactly_one_copy(sync_app, peer, tenant, target, records, sekmet.metadata())
    assert found["duplicates"] == 0
    assert found["resources"] > RECORD_COUNT
    print(f"\npushed {RECORD_COUNT} records = {found['resources']} resources in {stats.requests} requests")

    # A second pass changes nothing at the peer: the same records again are found, not created.
    with Session(sync_app.engine) as session:
        logged = session.exec(select(SyncAttempt).where(col(SyncAttempt.outbox_id).in_([r.id for r in rows]))).all()
    # Every row's trail shows the requests that carried it; a batch Bundle carrying several records is logged on
    # each of them and counted once in the stats, so records share requests.
    assert {a.outbox_id for a in logged} == {r.id for r in rows}
    assert len(logged) >= stats.requests
    assert stats.requests < RECORD_COUNT  # batches across records: fewer requests than records
    with Session(sync_app.engine) as session:
        status = sync_status.target_status(session, tenant, target)
    assert status.counts["sent"] == RECORD_COUNT and status.last_success_at is not None


def test_one_record_at_a_time_when_batching_is_off(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, sekmet.base_url)
    records = push_mixed_records(sync_app.driver(tenant), 12)
    processor = Processor(sync_app.engine, sync_app.settings, "one-by-one", use_batch=False)
    stats = drain(sync_app, tenant, processor=processor)
    assert {r.status for r in outbox_rows(sync_app.engine, tenant)} == {"sent"}
    assert stats.requests > len(records)  # identifier searches and creates, record by record
    with sekmet.client() as peer:
        found = check_peer_holds_exactly_one_copy(sync_app, peer, tenant, target, records, sekmet.metadata())
    assert found["duplicates"] == 0


def test_an_update_is_sent_with_if_match_to_the_same_resource(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, sekmet.base_url, push=["patients", "ketamine-administrations"])
    api = sync_app.driver(tenant)
    patient = api.patient()
    given = api.create("ketamine-administrations", administration_body(patient))
    drain(sync_app, tenant)
    changed = api.client.patch(
        f"/api/v1/ketamine-administrations/{given['id']}",
        json={"lot_number": "K77"},
        headers={**api.headers, "If-Match": 'W/"1"'},
    )
    assert changed.status_code == 200
    drain(sync_app, tenant)
    with sekmet.client() as peer:
        system = f"{sync_app.settings.canonical_base}/identifier/ketamine-administration"
        found = peer.get("MedicationAdministration", params={"identifier": f"{system}|{given['id']}"}).json()
        assert found["total"] == 1
        copy_ = found["entry"][0]["resource"]
        assert copy_["meta"]["versionId"] == "2"
        assert any(e.get("valueString") == "K77" for e in copy_.get("extension", []))
        check_peer_holds_exactly_one_copy(
            sync_app,
            peer,
            tenant,
            target,
            [("patients", patient), ("ketamine-administrations", given["id"])],
            sekmet.metadata(),
        )
    with Session(sync_app.engine) as session:
        puts = session.exec(select(SyncAttempt).where(col(SyncAttempt.method) == "PUT")).all()
    assert any("MedicationAdministration/" in p.url for p in puts)


def test_questionnaire_responses_use_update_as_create_where_identifier_search_is_missing(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    """sekmet stores QuestionnaireResponses but cannot search them: declared updateCreate, we PUT our own id."""
    statement = copy.deepcopy(sekmet.metadata())
    statement["rest"][0]["resource"].append(
        {
            "type": "QuestionnaireResponse",
            "interaction": [{"code": "read"}, {"code": "create"}, {"code": "update"}],
            "updateCreate": True,
        }
    )
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, sekmet.base_url, push=["patients", "questionnaire-responses"])
    api = sync_app.driver(tenant)
    patient = api.patient()
    response = api.create("questionnaire-responses", questionnaire_body(patient))
    processor = Processor(
        sync_app.engine, sync_app.settings, "qr", capability_cache=seeded_cache(target, sekmet.base_url, statement)
    )
    # A dropped PUT is simply repeated (PUT is idempotent): still one copy.
    with FaultProxy(
        sekmet.root_url, FaultPlan([FaultRule(Fault.drop_after_forward(), method="PUT", times=1)])
    ) as proxy:
        with Session(sync_app.engine) as session:
            from service.records.sync_target import SyncTarget

            row = session.get(SyncTarget, target)
            assert row is not None
            row.base_url = proxy.url("/fhir")
            session.add(row)
            session.commit()
        processor.capability_cache = seeded_cache(target, proxy.url("/fhir"), statement)
        drain(sync_app, tenant, processor=processor)
        assert proxy.count(fault="drop_after_forward") == 1
    assert {r.status for r in outbox_rows(sync_app.engine, tenant)} == {"sent"}
    with sekmet.client() as peer:
        stored = peer.get(f"QuestionnaireResponse/{response['id']}")
        assert stored.status_code == 200
        assert stored.json()["meta"]["versionId"] == "2"  # created, then the repeated PUT
        found = check_peer_holds_exactly_one_copy(
            sync_app, peer, tenant, target, [("questionnaire-responses", response["id"])], statement
        )
    assert found["duplicates"] == 0


def test_epic_capabilities_send_an_administration_as_a_procedure(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    epic = load_fixture("ehr-capabilities/epic-r4-sandbox-capabilitystatement.json")
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, sekmet.base_url, push=["patients", "ketamine-administrations"])
    api = sync_app.driver(tenant)
    patient = api.patient()
    given = api.create("ketamine-administrations", administration_body(patient))
    processor = Processor(
        sync_app.engine, sync_app.settings, "epic", capability_cache=seeded_cache(target, sekmet.base_url, epic)
    )
    drain(sync_app, tenant, processor=processor)
    rows = outbox_rows(sync_app.engine, tenant)
    assert [r.status for r in rows] == ["sent", "sent"]
    assert "sending a Procedure" in rows[1].last_error["note"]  # type: ignore[index]
    system = f"{sync_app.settings.canonical_base}/identifier/ketamine-administration"
    with sekmet.client() as peer:
        procedures = peer.get("Procedure", params={"identifier": f"{system}|{given['id']}"}).json()
        assert procedures["total"] == 1
        assert procedures["entry"][0]["resource"]["code"]["coding"][0]["code"] == "18629005"
        assert (
            peer.get("MedicationAdministration", params={"identifier": f"{system}|{given['id']}"}).json()["total"] == 0
        )
        check_peer_holds_exactly_one_copy(
            sync_app, peer, tenant, target, [("ketamine-administrations", given["id"])], epic
        )


class _MetadataOnly(BaseHTTPRequestHandler):
    statement: dict[str, Any] = {}

    def do_GET(self) -> None:
        body = json.dumps(self.statement).encode()
        self.send_response(200 if self.path.endswith("/metadata") else 404)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bare_server() -> Iterator[str]:
    _MetadataOnly.statement = {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "rest": [{"mode": "server", "resource": [{"type": "Patient", "interaction": [{"code": "read"}]}]}],
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetadataOnly)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()


def test_a_target_accepting_nothing_suitable_marks_the_record_not_supported(
    sync_app: SyncApp, bare_server: str
) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, bare_server, push=["ketamine-administrations"])
    api = sync_app.driver(tenant)
    api.create("ketamine-administrations", administration_body(api.patient()))
    drain(sync_app, tenant)
    [row] = outbox_rows(sync_app.engine, tenant)
    assert row.status == "not_supported"
    assert "accepts no MedicationAdministration writes" in row.last_error["message"]  # type: ignore[index]
    assert "Procedure" in row.last_error["message"]  # type: ignore[index]
    with Session(sync_app.engine) as session:
        status = sync_status.target_status(session, tenant, target)
    assert status.counts["not_supported"] == 1


def test_a_refused_resource_becomes_a_dead_letter_and_replays_once_fixed(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    tenant = sync_app.tenant()
    refuse = FaultRule(Fault.error(400), method="POST", path=r"/MedicationAdministration$")
    with FaultProxy(sekmet.root_url, FaultPlan([refuse])) as proxy:
        target = sync_app.target(tenant, proxy.url("/fhir"), push=["patients", "ketamine-administrations"])
        api = sync_app.driver(tenant)
        patient = api.patient()
        given = api.create("ketamine-administrations", administration_body(patient))
        drain(sync_app, tenant)
        rows = outbox_rows(sync_app.engine, tenant)
        assert [r.status for r in rows] == ["sent", "dead"]
        with Session(sync_app.engine) as session:
            [dead] = sync_status.list_dead_letters(session, tenant, target_id=target)
            detail = sync_status.outbox_detail(session, tenant, dead.id)
        assert dead.attempts == 1  # a 400 is not retried
        assert dead.last_status_code == 400
        outcome = dead.last_error["operation_outcome"]  # type: ignore[index]
        assert outcome["resourceType"] == "OperationOutcome"
        assert [(e.method, e.status_code) for e in detail.log][-1] == ("POST", 400)
        assert all(e.url.startswith(proxy.url("/fhir")) for e in detail.log)

        proxy.set_plan(FaultPlan.passthrough())  # the EHR side is fixed
        admin = sync_app.driver(tenant, "admin")
        replayed = admin.client.post(f"/api/v1/sync/dead-letters/{dead.id}/replay", headers=admin.headers)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {"replayed": 1}
        status = admin.client.get(f"/api/v1/sync/targets/{target}/status", headers=admin.headers).json()
        assert status["counts"]["pending"] == 1 and status["counts"]["dead"] == 0
        drain(sync_app, tenant)
    assert [r.status for r in outbox_rows(sync_app.engine, tenant)] == ["sent", "sent"]
    with sekmet.client() as peer:
        check_peer_holds_exactly_one_copy(
            sync_app, peer, tenant, target, [("ketamine-administrations", given["id"])], sekmet.metadata()
        )


@pytest.mark.parametrize("batch", [True, False], ids=["claimed together", "one by one"])
def test_records_of_a_patient_whose_row_is_dead_are_held_until_it_is_replayed(
    sync_app: SyncApp, sekmet: SekmetServer, batch: bool
) -> None:
    """A dead letter is not open, so the per-patient order no longer holds the patient's later rows behind it; they
    must not reach the EHR referring to a Patient it does not have (our local id). Two patients, so their later rows
    are claimed together (Processor.plan_many), or, with batching off, planned one by one (Processor.plan)."""
    tenant = sync_app.tenant()

    def drain_all() -> None:
        drain(sync_app, tenant, processor=Processor(sync_app.engine, sync_app.settings, "held", use_batch=batch))

    # Patients are refused (as a create, or in the batch Bundle that carries them); the rest then passes.
    refuse = [FaultRule(Fault.error(400), method="POST", path=path) for path in (r"/Patient$", r"/fhir/?$")]
    with FaultProxy(sekmet.root_url, FaultPlan(refuse)) as proxy:
        target = sync_app.target(tenant, proxy.url("/fhir"))
        api = sync_app.driver(tenant)
        patients = [api.patient(), api.patient()]
        drain_all()
        proxy.set_plan(FaultPlan.passthrough())
        records = [("patients", patient) for patient in patients]
        for patient in patients:
            records.append(
                ("ketamine-administrations", api.create("ketamine-administrations", administration_body(patient))["id"])
            )
            records.append(
                ("questionnaire-responses", api.create("questionnaire-responses", questionnaire_body(patient))["id"])
            )
        drain_all()
        rows = outbox_rows(sync_app.engine, tenant)
        assert [r.status for r in rows] == ["dead"] * 6
        patient_rows = {row.record_id: row.id for row in rows[:2]}
        for held in rows[2:]:
            message = held.last_error["message"]  # type: ignore[index]
            named = f"patients {held.patient_id} (outbox row {patient_rows[held.patient_id or '']})"
            assert named in message and "replay that first" in message, message
            assert held.attempts == 1 and held.last_status_code is None  # decided here: nothing was sent
        with sekmet.client() as peer:
            sent = json.dumps(all_resources(peer, "MedicationAdministration") + all_resources(peer, "Observation"))
        assert not any(patient in sent for patient in patients)  # nothing refers to our local Patient ids

        admin = sync_app.driver(tenant, "admin")
        dry_run = admin.client.post(
            f"/api/v1/sync/targets/{target}/dry-run",
            json={"record_kind": rows[2].record_kind, "record_id": rows[2].record_id},
            headers=admin.headers,
        ).json()
        assert dry_run["requests"] == [] and "replay that first" in dry_run["reason"], dry_run
        replayed = admin.client.post(
            "/api/v1/sync/dead-letters/replay", params={"target_id": target}, headers=admin.headers
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {"replayed": 6}
        drain_all()
    assert [r.status for r in outbox_rows(sync_app.engine, tenant)] == ["sent"] * 6
    with sekmet.client() as peer:
        found = check_peer_holds_exactly_one_copy(sync_app, peer, tenant, target, records, sekmet.metadata())
    assert found["duplicates"] == 0


PHQ9_LOINC = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]


def test_pull_brings_back_a_phq9_recorded_in_the_peer_scored_and_not_echoed(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
    target = sync_app.target(
        tenant, sekmet.base_url, pull=["patients", "questionnaire-responses"], mrn_system=mrn_system
    )
    mrn = f"MRN-{uuid.uuid4().hex[:8]}"
    with sekmet.client() as peer:
        created = peer.post(
            "Patient",
            json={
                "resourceType": "Patient",
                "identifier": [
                    {
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "system": mrn_system,
                        "value": mrn,
                    }
                ],
                "name": [{"family": "Pulled", "given": ["Paula"]}],
                "gender": "female",
                "birthDate": "1979-03-02",
            },
        )
        assert created.status_code == 201, created.text
        ehr_patient = created.json()["id"]
        answers = ["LA6569-3"] * 8 + ["LA6568-5"]  # "several days" x8, item 9 "not at all": total 8
        response = peer.post(
            "QuestionnaireResponse",
            json={
                "resourceType": "QuestionnaireResponse",
                "questionnaire": "http://loinc.org/q/44249-1",
                "status": "completed",
                "subject": {"reference": f"Patient/{ehr_patient}"},
                "authored": "2026-10-06T08:30:00+01:00",
                "item": [
                    {"linkId": f"/{code}", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": answer}}]}
                    for code, answer in zip(PHQ9_LOINC, answers, strict=True)
                ],
            },
        )
        assert response.status_code == 201, response.text
        ehr_response = response.json()["id"]

    summary = pull(sync_app.engine, sync_app.settings, target, capability_cache=pull_cache(target, sekmet))
    assert summary.kinds["patients"].created == 1, summary
    assert summary.kinds["questionnaire-responses"].created == 1, summary
    api = sync_app.driver(tenant)
    page = api.client.get(
        "/api/v1/questionnaire-responses",
        params={"identifier": f"{sekmet.base_url}|QuestionnaireResponse/{ehr_response}"},
        headers=api.headers,
    ).json()
    [stored] = page["items"]
    assert stored["score"]["total"] == 8
    assert stored["score"]["severity"] == "mild"
    # Not echoed back to the target it came from (which takes questionnaire responses).
    assert not [r for r in outbox_rows(sync_app.engine, tenant) if r.record_id == stored["id"]]

    again = pull(sync_app.engine, sync_app.settings, target, capability_cache=pull_cache(target, sekmet))
    assert again.kinds["questionnaire-responses"].created == 0
    assert again.kinds["patients"].created == 0
    with Session(sync_app.engine) as session:
        assert session.exec(select(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant)).all() == []


def test_dry_run_shows_the_requests_and_only_admins_may_ask(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, sekmet.base_url, push=["ketamine-administrations"])
    api = sync_app.driver(tenant)
    given = api.create("ketamine-administrations", administration_body(api.patient()))
    admin = sync_app.driver(tenant, "admin")
    body = {"record_kind": "ketamine-administrations", "record_id": given["id"]}
    url = f"/api/v1/sync/targets/{target}/dry-run"
    assert api.client.post(url, json=body, headers=api.headers).status_code == 403
    answer = admin.client.post(url, json=body, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["mapping"] == "natural"
    first, second = plan["requests"][:2]
    assert first["method"] == "GET" and "MedicationAdministration?identifier=" in first["url"]
    assert first["headers"] == {"Prefer": "handling=strict"}
    assert second["method"] == "POST" and second["body"]["resourceType"] == "MedicationAdministration"
    assert "id" not in second["body"]
    with sekmet.client() as peer:  # nothing was written
        system = f"{sync_app.settings.canonical_base}/identifier/ketamine-administration"
        assert (
            peer.get("MedicationAdministration", params={"identifier": f"{system}|{given['id']}"}).json()["total"] == 0
        )
    dead = admin.client.get("/api/v1/sync/dead-letters", headers=admin.headers)
    assert dead.status_code == 200 and dead.json() == []
