"""A claim's rows are planned and settled together (processing.Processor.plan_many, settling.store_outcomes): the
same plans as row by row, and each row's own outcome, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from service.clock import now_utc
from service.outbox import OutboxMessage
from service.records.sync_target import SyncTarget
from service.sync.capabilities import parse_capabilities
from service.sync.client import RequestLog
from service.sync.leases import claim
from service.sync.outcomes import DeliveryFailure, DeliveryResult
from service.sync.planning import Planned, RecordPlan
from service.sync.processing import Processor
from service.sync.tables import SyncAttempt
from tests.builders import cbt_body
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.shared_fixtures import load_fixture
from tests.sync.sync_harness import SyncApp, drain, outbox_rows, push_mixed_records, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()


def _only_patients(statement: dict[str, Any]) -> dict[str, Any]:
    rest = [{**r, "resource": [t for t in r["resource"] if t["type"] == "Patient"]} for r in statement["rest"]]
    return {**statement, "rest": rest}


def _comparable(planned: Planned) -> tuple[Any, dict[str, str], dict[str, tuple[Any, ...]]]:
    plan, known, delivered = planned
    own = {role: (r.id, r.resource_type, r.local_id, r.remote_id, r.remote_version) for role, r in delivered.items()}
    return plan, known, own


def test_a_claim_is_planned_exactly_as_its_rows_one_by_one(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    target_id = sync_app.target(tenant, sekmet.base_url)
    push_mixed_records(sync_app.driver(tenant), 25)
    drain(sync_app, tenant)  # the peer now holds them: the plans carry known references and our remote rows
    api = sync_app.driver(tenant)
    newcomer = api.patient()  # a record of a patient the peer has never seen: nothing known yet
    api.create("cbt-sessions", cbt_body(newcomer))
    rows = outbox_rows(sync_app.engine, tenant)
    gone = OutboxMessage(
        tenant_id=tenant,
        target_id=target_id,
        patient_id=newcomer,
        record_kind="ketamine-administrations",
        record_id=str(uuid.uuid4()),  # a record that no longer exists
        record_version=1,
        operation="create",
        status="pending",
        next_attempt_at=now_utc(),
        correlation_id=str(uuid.uuid4()),
        created_at=now_utc(),
        updated_at=now_utc(),
    )
    rows.append(gone)
    with Session(sync_app.engine) as session:
        target = session.get(SyncTarget, target_id)
    assert target is not None
    processor = Processor(sync_app.engine, sync_app.settings, "planner")
    statements = {
        "sekmet": sekmet.metadata(),
        "epic": load_fixture("ehr-capabilities/epic-r4-sandbox-capabilitystatement.json"),
        "patients only": _only_patients(sekmet.metadata()),
    }
    for name, statement in statements.items():
        capabilities = parse_capabilities(statement)
        together = [p for p in processor.plan_many(rows, target, capabilities) if not isinstance(p, DeliveryFailure)]
        assert len(together) == len(rows), name  # nothing here is held back by a dead letter
        one_by_one = [processor.plan(row, target, capabilities) for row in rows]
        assert [_comparable(p) for p in together] == [_comparable(p) for p in one_by_one], name
        plans = [p for p, _, _ in together]
        assert isinstance(plans[-1], DeliveryResult) and plans[-1].status == "not_supported", name
        if name == "sekmet":
            assert "no longer exists" in str(plans[-1].reason)
            assert sum(isinstance(p, RecordPlan) for p in plans) == len(rows) - 1
            assert sum(bool(known) for _, known, _ in together) >= 20  # references the peer holds, rewritten
            assert sum(bool(own) for _, _, own in together) == 25  # every delivered record's remote rows
        if name == "patients only":
            assert {p.kind for p in plans if isinstance(p, RecordPlan)} == {"patients"}


def test_a_batch_settles_each_row_and_leaves_a_row_claimed_by_another_worker(sync_app: SyncApp) -> None:
    tenant = sync_app.tenant()
    sync_app.target(tenant, "http://127.0.0.1:9/fhir")  # never contacted: the outcomes are given
    api = sync_app.driver(tenant)
    for _ in range(3):
        api.patient()
    first, second, third = claim(sync_app.engine, "w1", limit=10, lease_seconds=60, tenant_id=tenant)
    with Session(sync_app.engine) as session:
        taken = session.get(OutboxMessage, third.id)
        assert taken is not None
        taken.claimed_by = "w2"  # its lease ran out and another worker claimed it
        session.add(taken)
        session.commit()
    log = [RequestLog("POST", "http://127.0.0.1:9/fhir", 200, "ok", 12)]
    processor = Processor(sync_app.engine, sync_app.settings, "w1")
    before = now_utc()
    settled = [
        processor.settle(first, DeliveryResult("sent", "sent as a batch"), None, log, own_requests=1),
        processor.settle(
            second, None, DeliveryFailure("HTTP 503", retryable=True, status_code=503), log, own_requests=0
        ),
        processor.settle(third, DeliveryResult("sent"), None, log, own_requests=0),
    ]
    assert processor.record(settled) == ["sent", "failed", "sent"]
    sent, failed, untouched = outbox_rows(sync_app.engine, tenant)
    assert (sent.status, sent.attempts, sent.claimed_by) == ("sent", 1, None)
    assert sent.last_error == {"note": "sent as a batch"} and sent.delivered_at is not None
    assert (failed.status, failed.attempts, failed.last_status_code, failed.delivered_at) == ("failed", 1, 503, None)
    assert failed.last_error is not None and failed.last_error["message"] == "HTTP 503"
    assert failed.next_attempt_at > before + timedelta(seconds=0.5)  # backoff, not "now"
    assert (untouched.status, untouched.claimed_by, untouched.attempts) == ("in_flight", "w2", 0)
    with Session(sync_app.engine) as session:
        attempts = session.exec(select(SyncAttempt).where(col(SyncAttempt.outbox_id).in_([first.id, second.id]))).all()
    assert sorted((a.outbox_id, a.status_code, a.duration_ms) for a in attempts) == sorted(
        [(first.id, 200, 12), (second.id, 200, 12)]
    )
    assert (processor.stats.requests, processor.stats.sent, processor.stats.failed) == (1, 2, 1)
