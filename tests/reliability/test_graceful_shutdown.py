"""Graceful shutdown (issue #9 item 6) with real processes: SIGTERM to `tandem sync worker` (one process, and the
parent of `--processes 2`) and to `uvicorn service.main:app` while work is in flight.

Sync worker: the EHR peer (sekmet-fhir) sits behind a FaultProxy that holds every POST's response for
`POST_DELAY` s, so a worker is caught delivering a row with the rest of its batch claimed. The lease is 30 s on
purpose: only an explicit release can make a claimed row due again before the test is over. Required after SIGTERM:
the process exits 0 within `SHUTDOWN_DEADLINE`; the row each worker was delivering is finished (`sent`), the other
claimed rows are `pending` again at once with no claim (released, not left to their lease); no row is `in_flight`;
with `--processes 2` the whole process group is gone (no orphaned child). Then a fresh `tandem sync worker --once`
drains the outbox and sekmet holds exactly one copy of every record.

API: a transaction Bundle of `BUNDLE_ENTRIES` patients (several seconds of work) is in flight when uvicorn gets
SIGTERM. Required: the listening socket refuses new connections while that request is still being processed, the
request answers its normal 200 with every entry created, the patients are stored, and the process ends after a
complete shutdown (the lifespan's sweep thread is running: it must not hold the shutdown up).

Prints the figures. Run: `.venv/bin/pytest -q -s tests/reliability/test_graceful_shutdown.py` (about 1 min).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.app import create_app
from service.auth.tokens import mint_dev_token
from service.db.engine import make_engine
from service.outbox import OutboxMessage
from service.records.patient import Patient
from tests.conftest import make_settings, project_root
from tests.ehr_peer.fault_proxy import Fault, FaultPlan, FaultProxy, FaultRule
from tests.ehr_peer.sekmet_server import start_sekmet
from tests.fhir.support import FHIR_JSON, patient_resource
from tests.reliability.pg_faults import register, throwaway_postgres
from tests.reliability.process_fleet import TANDEM, Fleet, Proc, service_env, wait_until_serving
from tests.sync.sync_harness import LOOPBACK_HOSTS, SyncApp, check_peer_holds_exactly_one_copy

POST_DELAY = 2.5  # the proxy holds each POST's response this long: a row takes at least this to deliver
LEASE_SECONDS = 30  # long on purpose: a claimed row is due again before that only if it was released
BATCH = 10
ROWS = 25  # patients (one outbox row each): two batches claimed, the rest never claimed
SHUTDOWN_DEADLINE = 30.0  # generous: the machine is shared; the measured time is printed, not judged
BUNDLE_ENTRIES = 600
IN_FLIGHT_AFTER = 1.0  # SIGTERM this long after the Bundle was sent (it takes several seconds to process)


def _outbox(engine: Any, tenant_id: str) -> dict[int, OutboxMessage]:
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant_id))
        return {row.id: row for row in rows if row.id is not None}


def _group_members(pgid: int, *, running_only: bool = False) -> list[int]:
    """The processes of a process group (from /proc); running_only: leave out zombies (exited, not reaped yet)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                stat = (entry / "stat").read_text()
                state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
                if int(group) == pgid and not (running_only and state in "ZX"):
                    members.append(int(entry.name))
    return members


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _done_lines(proc: Proc) -> list[dict[str, int]]:
    """The `done: claimed …` summary each worker process prints when its loop ends."""
    text = " ".join(proc.log.read_text(errors="replace").split())  # rich wraps long lines in a log file
    return [
        {name: int(n) for name, n in re.findall(r"([a-z]+(?: [a-z]+)?) (\d+)", summary)}
        for summary in re.findall(r"\] done: (.*?requests \d+)", text)
    ]


@pytest.mark.parametrize(
    ("processes", "one_by_one"), [(1, True), (2, True), (2, False)], ids=["1-one-by-one", "2-one-by-one", "2-batch"]
)
def test_sigterm_worker_finishes_its_row_and_releases_its_claims(
    tmp_path: Path, processes: int, one_by_one: bool
) -> None:
    delayed = FaultPlan([FaultRule(Fault.delay(POST_DELAY), method="POST")])
    with (
        throwaway_postgres() as url,
        start_sekmet(tmp_path / "sekmet") as ehr,
        FaultProxy(ehr.root_url, delayed) as proxy,
    ):
        settings = make_settings(url, sync_allowed_hosts=LOOPBACK_HOSTS, sync_require_https=False)
        with TestClient(create_app(settings), raise_server_exceptions=False) as setup_client:
            sync_app = SyncApp(setup_client, settings)
            tenant = sync_app.tenant()
            target = sync_app.target(tenant, proxy.url("/fhir"))
            api = sync_app.driver(tenant)
            records = [("patients", api.patient()) for _ in range(ROWS)]
            assert Counter(r.status for r in _outbox(sync_app.engine, tenant).values()) == {"pending": ROWS}

            fleet = Fleet(url, tmp_path)
            try:
                worker = fleet.worker(
                    lease_seconds=LEASE_SECONDS, batch=BATCH, processes=processes, one_by_one=one_by_one
                )
                pgid = os.getpgid(worker.popen.pid)
                # Every process holds a batch and waits for a (delayed) POST answer: a worker sends one request at a
                # time, so as many POSTs unanswered as processes means each one is delivering a row.
                deadline = time.monotonic() + 120
                while True:
                    assert worker.alive and time.monotonic() < deadline, fleet.log_tails()
                    rows = _outbox(sync_app.engine, tenant)
                    holders = {r.claimed_by for r in rows.values() if r.status == "in_flight"}
                    posting = [r for r in proxy.snapshot() if r.method == "POST" and r.status is None]
                    if len(holders) == processes and len(posting) == processes:
                        break
                    time.sleep(0.05)
                members = _group_members(pgid)
                claimed = {i for i, r in rows.items() if r.status == "in_flight"}
                sent_before = {i for i, r in rows.items() if r.status == "sent"}

                signalled = time.monotonic()
                os.kill(worker.popen.pid, signal.SIGTERM)  # the parent only, as systemd/docker stop would
                try:
                    exit_code = worker.popen.wait(SHUTDOWN_DEADLINE)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"worker still running {SHUTDOWN_DEADLINE} s after SIGTERM\n{fleet.log_tails()}")
                shutdown_seconds = time.monotonic() - signalled
                # The parent joined its workers before it exited; multiprocessing's resource tracker (the spawn
                # context starts one) sees the parent's end of its pipe close and exits. Nothing may keep running.
                deadline = time.monotonic() + 10
                while _group_members(pgid, running_only=True) and time.monotonic() < deadline:
                    time.sleep(0.02)
                still_running = _group_members(pgid, running_only=True)
                running_seconds = time.monotonic() - signalled
                # The tracker is not reaped by the parent: it stays a zombie until the reaper (PID 1, a service
                # manager) collects it. Only then is the group gone.
                deadline = time.monotonic() + 30
                while not _group_gone(pgid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                group_gone = _group_gone(pgid)
                group_seconds = time.monotonic() - signalled
                after = _outbox(sync_app.engine, tenant)
                summaries = _done_lines(worker)
            except BaseException:
                print(fleet.log_tails())
                raise
            finally:
                fleet.kill_all()

            assert exit_code == 0, fleet.log_tails()
            assert not still_running, f"orphaned processes of group {pgid}: {still_running}"
            assert group_gone, f"process group {pgid} not reaped: {_group_members(pgid)}"
            assert len(members) >= 1 + (processes if processes > 1 else 0), members  # parent (+ workers)
            assert len(summaries) == processes, fleet.log_tails()  # every worker process ended its loop itself
            assert not [i for i, r in after.items() if r.status == "in_flight" or r.claimed_by], after
            finished = {i for i in claimed if after[i].status == "sent"}
            released = {i for i in claimed if after[i].status == "pending"}
            assert finished | released == claimed, {i: after[i].status for i in claimed}
            if one_by_one:
                # Each process finished the row it was delivering and started no other one after the signal.
                assert processes <= len(finished) <= 2 * processes, (len(finished), fleet.log_tails())
            else:
                # The request in flight was the claim's batch Bundle: each process finished it whole.
                assert finished == claimed and not released, (len(finished), len(released), fleet.log_tails())
            assert len(released) == sum(s["released"] for s in summaries)
            now = time.time()
            for i in released:  # due again at once, no lease left to wait for
                row = after[i]
                assert row.claimed_until is None and row.next_attempt_at.timestamp() <= now, row
            assert {i for i, r in after.items() if r.status == "sent"} == sent_before | finished

            # A fresh worker finds every row due at once and drains the outbox; sekmet holds one copy of each.
            proxy.set_plan(FaultPlan.passthrough())
            drained = subprocess.run(
                [TANDEM, "sync", "worker", "--once", "--lease-seconds", str(LEASE_SECONDS), "--batch", str(BATCH)],
                cwd=project_root(),
                env=service_env(url),
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert drained.returncode == 0, drained.stderr[-3000:]
            final = Counter(r.status for r in _outbox(sync_app.engine, tenant).values())
            assert final == {"sent": ROWS}, (final, drained.stderr[-3000:])
            with ehr.client() as peer:
                found = check_peer_holds_exactly_one_copy(sync_app, peer, tenant, target, records, ehr.metadata())
    assert found["duplicates"] == 0
    print(
        f"\ngraceful shutdown, sync worker --processes {processes}{' --one-by-one' if one_by_one else ''} "
        f"(lease {LEASE_SECONDS} s, batch {BATCH}, POSTs "
        f"delayed {POST_DELAY} s): {len(members)} processes in the group at SIGTERM; rows claimed {len(claimed)}, "
        f"finished (sent) {len(finished)}, released {len(released)}, left in flight 0; exit code {exit_code} after "
        f"{shutdown_seconds:.1f} s, nothing of its process group running after {running_seconds:.1f} s, group gone "
        f"(killpg: no such process) after {group_seconds:.1f} s; --once drain: {ROWS} rows sent, "
        f"peer resources {found['resources']}, duplicates {found['duplicates']}"
    )


def test_sigterm_while_worker_processes_start_is_a_clean_stop(tmp_path: Path) -> None:
    """SIGTERM to the parent of `--processes 2` as soon as its children exist, while they are still importing
    (before their own SIGTERM handler is installed, so they die of the forwarded signal): they had claimed nothing,
    and the parent used to exit 1 for it."""
    with throwaway_postgres() as url:
        fleet = Fleet(url, tmp_path)
        try:
            worker = fleet.worker(lease_seconds=LEASE_SECONDS, batch=BATCH, processes=2)
            pgid = os.getpgid(worker.popen.pid)
            deadline = time.monotonic() + 60
            while len(_group_members(pgid)) < 4:  # the parent, multiprocessing's resource tracker, two workers
                assert worker.alive and time.monotonic() < deadline, fleet.log_tails()
                time.sleep(0.005)
            os.kill(worker.popen.pid, signal.SIGTERM)
            exit_code = worker.popen.wait(SHUTDOWN_DEADLINE)
            deadline = time.monotonic() + 10
            while _group_members(pgid, running_only=True) and time.monotonic() < deadline:
                time.sleep(0.02)
            still_running = _group_members(pgid, running_only=True)
            stopped_in_loop = len(_done_lines(worker))
        finally:
            fleet.kill_all()
    assert exit_code == 0, fleet.log_tails()
    assert not still_running, still_running
    print(
        f"\ngraceful shutdown, sync worker --processes 2 stopped while starting: exit code {exit_code}, "
        f"{2 - stopped_in_loop} of 2 workers stopped before their loop began, nothing of the group running"
    )


def _bundle(count: int) -> tuple[dict[str, Any], list[str]]:
    """A transaction of `count` patient creates, and their fullUrls (stored as each patient's source id)."""
    full_urls = [f"urn:uuid:{uuid.uuid4()}" for _ in range(count)]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": u, "resource": patient_resource(), "request": {"method": "POST", "url": "Patient"}}
            for u in full_urls
        ],
    }
    return bundle, full_urls


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_sigterm_api_process_answers_the_request_in_flight(tmp_path: Path) -> None:
    with throwaway_postgres() as url:
        engine = make_engine(url, pool_size=1)
        tenant = register(engine, f"t-{uuid.uuid4().hex[:12]}")
        token = mint_dev_token(make_settings(url), tenant=tenant, role="ehr-system")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        fleet = Fleet(url, tmp_path)
        try:
            # The lifespan's plan-status sweep thread runs (every second): its stop is part of the shutdown.
            api = fleet.api("api", log_level="info", env={"TANDEM_STATUS_SWEEP_SECONDS": "1"})
            assert api.port is not None
            base = f"http://127.0.0.1:{api.port}"
            wait_until_serving(base, api)
            bundle, full_urls = _bundle(BUNDLE_ENTRIES)
            outcome: dict[str, Any] = {}

            def send() -> None:
                try:
                    outcome["response"] = httpx.post(f"{base}/fhir", json=bundle, headers=headers, timeout=300)
                except httpx.HTTPError as error:
                    outcome["error"] = error
                outcome["at"] = time.monotonic()

            sender = threading.Thread(target=send)
            sent = time.monotonic()
            sender.start()
            sender.join(IN_FLIGHT_AFTER)
            assert sender.is_alive(), "the Bundle was answered before SIGTERM: make it bigger"
            signalled = time.monotonic()
            os.kill(api.popen.pid, signal.SIGTERM)
            refused_at = None
            while sender.is_alive() and refused_at is None:
                if _refuses(api.port):
                    refused_at = time.monotonic()
                else:
                    time.sleep(0.02)
            sender.join(300)
            try:
                exit_code = api.popen.wait(SHUTDOWN_DEADLINE)
            except subprocess.TimeoutExpired:
                pytest.fail(f"uvicorn still running {SHUTDOWN_DEADLINE} s after SIGTERM\n{fleet.log_tails()}")
            exited = time.monotonic()
            log = api.log.read_text(errors="replace")
        except BaseException:
            print(fleet.log_tails(40))
            raise
        finally:
            fleet.kill_all()

        assert "error" not in outcome, (outcome, log[-3000:])
        response: httpx.Response = outcome["response"]
        assert response.status_code == 200, response.text[:2000]
        statuses = Counter(e["response"]["status"].split()[0] for e in response.json()["entry"])
        assert statuses == {"201": BUNDLE_ENTRIES}, statuses
        with Session(engine) as session:
            stored = list(session.exec(select(Patient.source_id).where(col(Patient.tenant_id) == tenant)))
        engine.dispose()
        assert sorted(stored) == sorted(full_urls)  # every patient of the Bundle, once
        # Refused while the Bundle was still being processed: shutdown closed the listening socket first.
        assert refused_at is not None and refused_at < outcome["at"], (refused_at, outcome["at"])
        # uvicorn (>= 0.29) ends a graceful shutdown by raising the signal it caught again, so the process ends
        # "killed by SIGTERM" (shell status 143) — after the shutdown completed; as PID 1 in a container that
        # signal is ignored and the status is 0.
        assert exit_code in (0, -signal.SIGTERM), (exit_code, log[-3000:])
        assert "Application shutdown complete." in log and "Finished server process" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
    print(
        f"\ngraceful shutdown, API: transaction Bundle of {BUNDLE_ENTRIES} patients sent, SIGTERM "
        f"{signalled - sent:.1f} s later; new connections refused {refused_at - signalled:.2f} s after SIGTERM; "
        f"the Bundle answered {response.status_code} (all {statuses['201']} entries 201) "
        f"{outcome['at'] - signalled:.1f} s after SIGTERM (took {outcome['at'] - sent:.1f} s); {len(stored)} "
        f"patients stored; process ended {exited - signalled:.1f} s after SIGTERM with status {exit_code} "
        "(lifespan shutdown complete)"
    )
