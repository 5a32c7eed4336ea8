"""At-least-once delivery with an idempotent effect: faults on ~30 % of requests (drops after the peer processed
the request included) and workers SIGKILLed mid-batch still leave exactly one copy of each record at the peer.

TANDEM_SYNC_HEAVY=1 pushes HEAVY_RECORD_COUNT records and runs more workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session

from service.records.sync_target import SyncTarget
from service.sync import auth as sync_auth
from service.sync.processing import Processor
from service.sync.status import replay
from tests.conftest import TEST_SECRET, project_root
from tests.ehr_peer.fault_proxy import Fault, FaultPlan, FaultProxy, FaultRule
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.sync.sync_harness import (
    ALERT_KINDS,
    PUSH_KINDS,
    SyncApp,
    check_peer_holds_exactly_one_copy,
    drain,
    outbox_rows,
    push_mixed_records,
    sync_app_fixture,
    with_alerts,
)

HEAVY = os.environ.get("TANDEM_SYNC_HEAVY") == "1"
FAULT_RECORD_COUNT = 500 if HEAVY else 50
KILL_RECORD_COUNT = 300 if HEAVY else 40
WORKERS = 4 if HEAVY else 3
KILLS = 3 if HEAVY else 1
sekmet = sekmet_fixture()
sekmet_smart = sekmet_fixture(smart=True)
sync_app = sync_app_fixture()


def fault_plan(seed: int) -> FaultPlan:
    """About 30 % of FHIR requests fail, one way or another (rules are tried in order)."""
    fhir = r"^/fhir/"
    return FaultPlan(
        [
            FaultRule(Fault.drop_after_forward(), path=fhir, probability=0.10),
            FaultRule(Fault.drop_after_forward(reset=True), method="POST", path=fhir, probability=0.05),
            FaultRule(Fault.error(500), path=fhir, probability=0.06),
            FaultRule(Fault.error(503), path=fhir, probability=0.03),
            FaultRule(Fault.throttle(retry_after=1), path=fhir, probability=0.05),
            FaultRule(Fault.drop_before_forward(), path=fhir, probability=0.04),
        ],
        seed=seed,
    )


def test_faults_on_a_third_of_requests_leave_exactly_one_copy(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    # Every PHQ-9 of the mix answers item 9 positive: each enrollment has an urgent finding and a progress note.
    records = with_alerts(push_mixed_records(sync_app.driver(tenant), FAULT_RECORD_COUNT))
    with FaultProxy(sekmet.root_url, fault_plan(seed=20261126)) as proxy:
        target = sync_app.target(tenant, proxy.url("/fhir"), push=[*PUSH_KINDS, *ALERT_KINDS])
        # The target was created after the records: queue them for it as a backfill would.
        _enqueue_backfill(sync_app, tenant, records)
        replayed = _drain_replaying_dead_letters(sync_app, tenant, target)
        total = proxy.count()
        faults = total - proxy.count(fault=None)
        dropped_after = proxy.count(fault="drop_after_forward")
    rows = outbox_rows(sync_app.engine, tenant)
    assert {r.status for r in rows} == {"sent"}, [
        (r.record_kind, r.attempts, r.last_error) for r in rows if r.status != "sent"
    ]
    assert faults / total > 0.2
    assert dropped_after > 0
    with sekmet.client() as peer:
        found = check_peer_holds_exactly_one_copy(sync_app, peer, tenant, target, records, sekmet.metadata())
    assert found["duplicates"] == 0
    print(
        f"\n{FAULT_RECORD_COUNT} records ({found['resources']} resources): {total} requests, {faults} faults "
        f"({faults / total:.0%}), {dropped_after} dropped after forwarding, "
        f"retries {sum(r.attempts - 1 for r in rows)}, dead letters replayed {replayed}, "
        f"duplicates {found['duplicates']}"
    )


def _drain_replaying_dead_letters(sync_app: SyncApp, tenant: str, target: str) -> int:
    """Drain; a record that exhausted its attempts while a third of requests failed waits as a dead letter, and
    the operator's replay (here, as soon as the drain ends) delivers it. Nothing is lost either way."""
    drain(sync_app, tenant, rounds=80)
    replayed = 0
    for _ in range(3):
        if not any(r.status == "dead" for r in outbox_rows(sync_app.engine, tenant)):
            break
        with Session(sync_app.engine) as session:
            replayed += replay(session, tenant, target_id=target)
        drain(sync_app, tenant, rounds=80)
    return replayed


def _enqueue_backfill(sync_app: SyncApp, tenant: str, records: list[tuple[str, str]]) -> None:
    from service.outbox import enqueue
    from service.sync.records import public_record

    with Session(sync_app.engine) as session:
        for kind, record_id in records:
            record = public_record(session, tenant, kind, record_id)
            assert record is not None
            enqueue(
                session,
                tenant_id=tenant,
                record_kind=kind,
                record_id=record_id,
                record_version=record.version,
                patient_id=record_id if kind == "patients" else getattr(record, "patient_id", None),
            )
        session.commit()


WORKER_SCRIPT = """
import sys, threading
from service.db.engine import make_engine
from service.settings import Settings
from service.sync.worker import run_worker
settings = Settings()
engine = make_engine(settings.database_url, pool_size=2)
stats = run_worker(engine, settings, worker_id=sys.argv[2], stop_event=threading.Event(), once=True,
                   tenant_id=sys.argv[1], lease_seconds=int(sys.argv[3]), batch=5)
print(vars(stats))
"""


def _spawn_worker(
    database_url: str, tenant: str, worker_id: str, lease_seconds: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TANDEM_DATABASE_URL": database_url,
        "TANDEM_ENVIRONMENT": "test",
        "TANDEM_DEV_TOKEN_SECRET": TEST_SECRET,
        "TANDEM_SYNC_ALLOWED_HOSTS": json.dumps(["127.0.0.1"]),
        "TANDEM_SYNC_REQUIRE_HTTPS": "false",
        "PYTHONPATH": str(project_root()),
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, tenant, worker_id, str(lease_seconds)],
            cwd=project_root(),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_workers_killed_mid_batch_recover_without_duplicates(
    sync_app: SyncApp, sekmet: SekmetServer, database_url: str, tmp_path: Path
) -> None:
    tenant = sync_app.tenant()
    lease = 3
    # Faults on ~30 % of requests, and every other response slowed, so the kills land while workers hold rows.
    faulty_and_slow = FaultPlan([*fault_plan(seed=1126).rules, FaultRule(Fault.delay(0.1), path=r"^/fhir/")], seed=1126)
    with FaultProxy(sekmet.root_url, faulty_and_slow) as proxy:
        target = sync_app.target(tenant, proxy.url("/fhir"), push=[*PUSH_KINDS, *ALERT_KINDS])
        records = with_alerts(push_mixed_records(sync_app.driver(tenant), KILL_RECORD_COUNT))
        workers = [_spawn_worker(database_url, tenant, f"w{n}", lease, tmp_path / f"w{n}.log") for n in range(WORKERS)]
        # Kill whichever worker is holding rows at that moment (which one claims first is up to the scheduler),
        # start a fresh one in its place, and do it again: KILLS times in all.
        running = {f"w{n}": worker for n, worker in enumerate(workers)}
        stranded: list[int] = []
        for kill in range(KILLS):
            holder: str | None = None
            deadline = time.monotonic() + 60
            while holder is None and time.monotonic() < deadline:
                holding = {r.claimed_by for r in outbox_rows(sync_app.engine, tenant) if r.status == "in_flight"}
                holder = next((name for name in running if name in holding), None)
                time.sleep(0.02)
            if holder is None:
                break  # the others finished everything first: nothing left to kill mid-batch
            victim = running.pop(holder)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            stranded += [
                r.id
                for r in outbox_rows(sync_app.engine, tenant)
                if r.id is not None and r.claimed_by == holder and r.status == "in_flight"
            ]
            name = f"r{kill}"
            running[name] = _spawn_worker(database_url, tenant, name, lease, tmp_path / f"{name}.log")
        assert stranded, "no worker was killed while holding rows"
        for worker in running.values():
            assert worker.wait(180) == 0
        time.sleep(lease + 0.5)  # the killed workers' leases run out
        replayed = _drain_replaying_dead_letters(sync_app, tenant, target)
        faults = proxy.count() - proxy.count(fault=None) - proxy.count(fault="delay")
    rows = outbox_rows(sync_app.engine, tenant)
    assert {r.status for r in rows} == {"sent"}
    assert all(r.claimed_by is None for r in rows)
    with sekmet.client() as peer:
        found = check_peer_holds_exactly_one_copy(sync_app, peer, tenant, target, records, sekmet.metadata())
    assert found["duplicates"] == 0
    print(
        f"\n{KILL_RECORD_COUNT} records, {WORKERS} workers, {KILLS} SIGKILLs mid-batch stranding {len(stranded)} rows,"
        f" {faults} faults injected, {replayed} dead letters replayed; duplicates 0"
    )


def test_smart_backend_services_against_the_peer(
    sync_app: SyncApp, sekmet_smart: SekmetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sekmet_smart.smart_client
    assert client is not None and sekmet_smart.token_url is not None
    settings = sync_app.settings.model_copy(
        update={"smart_private_keys": {client.kid: client.private_key_pem.decode()}}
    )
    tenant = sync_app.tenant()
    auth = {
        "kind": "smart-backend",
        "client_id": client.client_id,
        "token_url": sekmet_smart.token_url,
        "key_id": client.kid,
        "algorithm": "RS384",
        "scope": "system/*.*",
    }
    target = sync_app.target(tenant, sekmet_smart.base_url, auth=auth, push=["patients", "ketamine-administrations"])
    records = push_mixed_records(sync_app.driver(tenant), 3)[:3]
    tokens = sync_auth.TokenCache()
    processor = Processor(sync_app.engine, settings, "smart", tokens=tokens)
    drain(sync_app, tenant, processor=processor)
    assert tokens.requests == 1  # one token for every request
    # An access token the peer no longer accepts: renewed once on the 401, and the delivery goes through.
    [cached] = tokens._tokens.values()
    cached.value = "not-a-valid-token"
    api = sync_app.driver(tenant)
    from tests.builders import administration_body

    more = api.create("ketamine-administrations", administration_body(records[0][1]))
    drain(sync_app, tenant, processor=processor)
    assert tokens.requests == 2
    rows = outbox_rows(sync_app.engine, tenant)
    assert {r.status for r in rows} == {"sent"}, [r.last_error for r in rows]
    with Session(sync_app.engine) as session:
        assert session.get(SyncTarget, target) is not None
    with sekmet_smart.client() as peer:
        kept = [r for r in records if r[0] in ("patients", "ketamine-administrations")]
        found = check_peer_holds_exactly_one_copy(
            sync_app, peer, tenant, target, [*kept, ("ketamine-administrations", more["id"])], sekmet_smart.metadata()
        )
    assert found["duplicates"] == 0
