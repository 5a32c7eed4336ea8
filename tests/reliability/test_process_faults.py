"""Process faults: two API processes (`uvicorn service.main:app`) and four sync workers (`tandem sync worker`) on one
PostgreSQL database, pushing to a real EHR peer (sekmet-fhir), under a mixed load from client threads, while a seeded
random schedule SIGKILLs workers and API processes (and restarts them after a moment; the last worker killed stays
dead, so the others must take over its leases).

Clients: creates of patients (JSON API, or FHIR with If-None-Exist) and of their records (JSON API), and a patient
update under If-Match, spread over both API processes. A request that meets a killed process gets a connection error
and is sent again to the other one with the same source identifier (so resending is idempotent); an update whose
answer was lost is read back before it is tried again.

Required after the load: the outbox drains (no open rows, no dead letters, no claims left), every create the clients
got a 2xx for is stored exactly once (and nothing else is), every acknowledged update is the record's current state,
sekmet holds exactly one copy of every record, equal to what we send (tests/sync/sync_harness.py), no 5xx, and no
process died that was not killed. Prints the figures.

TANDEM_SOAK=1 (`make soak`): more clients, a longer load, more kills. TANDEM_PROCESS_FAULTS_SEED=n repeats a schedule
(kill times, restart delays, API victims; which worker holds rows at a kill, and the interleaving with the load, are
up to the scheduler).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from service.app import create_app
from service.auth.tokens import mint_dev_token
from service.outbox import OPEN_STATUSES, OutboxMessage
from service.record_store.kinds import RECORD_KINDS
from service.records.patient import Patient
from tests.builders import (
    API,
    PATIENT_RECORD_BODIES,
    patient_body,
)
from tests.conftest import make_settings
from tests.ehr_peer.sekmet_server import start_sekmet
from tests.fhir.support import FHIR_JSON, patient_resource
from tests.reliability.pg_faults import DatabaseSwitch, throwaway_postgres
from tests.reliability.process_fleet import LEASE_SECONDS, Fleet, Proc, wait_until_serving
from tests.sync.sync_harness import (
    ALERT_KINDS,
    LOOPBACK_HOSTS,
    PUSH_KINDS,
    SyncApp,
    check_peer_holds_exactly_one_copy,
    with_alerts,
)

SOAK = os.environ.get("TANDEM_SOAK") == "1"
CLIENTS = 6 if SOAK else 3
WORKERS = 4
LOAD_SECONDS = 120 if SOAK else 18  # kills fall in this window; the load goes on until the last restart is done
WORKER_KILLS = 8 if SOAK else 2
API_KILLS = 8 if SOAK else 2
RESEND_DEADLINE = 120  # a client gives up on one request after this long without an answer from either process
DRAIN_DEADLINE = 900 if SOAK else 300  # generous: the machine is shared; the drain time is printed, not judged
KINDS = {kind.path: kind for kind in RECORD_KINDS}


# ---- the load ---------------------------------------------------------------------------------------------------


@dataclass
class Created:
    kind: str
    record_id: str
    source_system: str
    source_value: str
    status: int  # 201, or 200 for a resend that found the record stored by the lost attempt


@dataclass
class ClientLog:
    requests: int = 0
    connection_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    created: list[Created] = field(default_factory=list)
    updates: dict[str, str] = field(default_factory=dict)  # patient id -> given name of the last acknowledged update
    updates_read_back: int = 0  # updates whose answer was lost and which were found applied
    unexpected: list[str] = field(default_factory=list)


class LoadClient:
    """One client thread: round robin over the API processes; a connection error sends the same request again to
    the next process."""

    def __init__(self, bases: list[str], headers: dict[str, str], stop: threading.Event, n: int) -> None:
        self.bases = bases
        self.headers = headers
        self.stop = stop
        self.turn = n
        self.n = n
        self.log = ClientLog()
        self.down_until: dict[str, float] = {}  # base URL -> when to try it again after a connection error
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + RESEND_DEADLINE
        headers = {**self.headers, **kwargs.pop("headers", {})}
        while True:
            base = self.bases[self.turn % len(self.bases)]
            self.turn += 1
            if self.down_until.get(base, 0.0) > time.monotonic() and any(
                self.down_until.get(other, 0.0) <= time.monotonic() for other in self.bases
            ):
                continue  # it refused a moment ago: the other process takes the request
            self.log.requests += 1
            try:
                response = self.http.request(method, f"{base}{path}", headers=headers, **kwargs)
            except httpx.TransportError as error:
                self.log.connection_errors += 1
                if time.monotonic() > deadline:
                    raise AssertionError(f"{method} {path}: no answer from any API process ({error!r})") from error
                self.down_until[base] = time.monotonic() + 1.0
                time.sleep(0.05)
                continue
            self.log.statuses[response.status_code] += 1
            return response

    def create(self, kind: str, body: dict[str, Any]) -> str:
        response = self.send("POST", f"{API}/{kind}", json=body)
        return self._created(kind, response, body["source"]["system"], body["source"]["value"])

    def create_fhir_patient(self) -> str:
        resource = patient_resource()
        mrn = resource["identifier"][0]
        response = self.send(
            "POST",
            "/fhir/Patient",
            json=resource,
            headers={
                "Content-Type": FHIR_JSON,
                "Accept": FHIR_JSON,
                "If-None-Exist": f"identifier={mrn['system']}|{mrn['value']}",
            },
        )
        return self._created("patients", response, mrn["system"], mrn["value"])

    def _created(self, kind: str, response: httpx.Response, system: str, value: str) -> str:
        if response.status_code not in (200, 201):
            raise AssertionError(f"create {kind}: {response.status_code} {response.text[:500]}")
        record_id = str(response.json()["id"])
        self.log.created.append(Created(kind, record_id, system, value, response.status_code))
        return record_id

    def rename(self, patient_id: str, given_name: str) -> None:
        """PATCH under If-Match; when the answer was lost (a 412 on the resend), read back whether it was applied."""
        for _ in range(10):
            current = self.send("GET", f"{API}/patients/{patient_id}")
            assert current.status_code == 200, current.text
            if current.json()["given_name"] == given_name:  # the lost attempt was applied
                self.log.updates_read_back += 1
                self.log.updates[patient_id] = given_name
                return
            response = self.send(
                "PATCH",
                f"{API}/patients/{patient_id}",
                json={"given_name": given_name},
                headers={"If-Match": current.headers["etag"]},
            )
            if response.status_code == 200:
                self.log.updates[patient_id] = given_name
                return
            if response.status_code != 412:
                raise AssertionError(f"update: {response.status_code} {response.text[:500]}")
        raise AssertionError(f"update of patient {patient_id} never went through")

    def run(self) -> ClientLog:
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                patient = self.create("patients", patient_body()) if n % 2 else self.create_fhir_patient()
                for kind, build in PATIENT_RECORD_BODIES.items():
                    self.create(kind, build(patient))
                self.rename(patient, f"Renamed-{self.n}-{n}")
        except Exception as error:  # reported by the test, with the figures so far
            self.log.unexpected.append(repr(error))
        finally:
            self.http.close()
        return self.log


# ---- the faults ---------------------------------------------------------------------------------------------------


@dataclass
class FaultSchedule:
    """Kill times (seconds after the load started) and restart delays, from one seed."""

    events: list[tuple[float, str, float]]  # (at, "worker" | "api", restart after; < 0: stays dead)

    @classmethod
    def make(cls, seed: int) -> FaultSchedule:
        rng = random.Random(seed)
        events: list[tuple[float, str, float]] = []
        worker_times = sorted(rng.uniform(2, LOAD_SECONDS) for _ in range(WORKER_KILLS))
        for index, at in enumerate(worker_times):
            last = index == len(worker_times) - 1
            events.append((at, "worker", -1.0 if last else rng.uniform(0.5, 3.0)))
        at = 0.0
        for _ in range(API_KILLS):  # one API process down at a time: the other answers meanwhile
            at = max(at, 1.5) + rng.uniform(1.0, LOAD_SECONDS / API_KILLS)
            restart = rng.uniform(0.5, 2.5)
            events.append((at, "api", restart))
            at += restart + 4.0  # a restarted uvicorn needs a few seconds before it serves
        return cls(sorted(events))


@dataclass
class FaultLog:
    worker_kills: int = 0
    api_kills: int = 0
    killed_holding_rows: int = 0
    rows_stranded: int = 0
    stranded_ids: set[int] = field(default_factory=set)


def holders(engine: Engine) -> dict[int, list[int]]:
    """pid of each worker holding in-flight rows -> those row ids (worker ids are host:pid:random)."""
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage.id, OutboxMessage.claimed_by).where(col(OutboxMessage.status) == "in_flight")
        ).all()
    held: dict[int, list[int]] = {}
    for row_id, claimed_by in rows:
        if claimed_by and row_id is not None:
            held.setdefault(int(claimed_by.split(":")[1]), []).append(row_id)
    return held


def inject(
    fleet: Fleet, schedule: FaultSchedule, rng: random.Random, engine: Engine, started: float, log: FaultLog
) -> None:
    """Run the schedule: at each time SIGKILL a worker (one holding rows when there is one) or an API process,
    and start a fresh one after the delay. Returns when the last restart is done."""
    pending: list[tuple[float, Callable[[], None]]] = []

    def now() -> float:
        return time.monotonic() - started

    def restart_api(victim: Proc) -> Callable[[], None]:
        def start() -> None:
            proc = fleet.api(f"{victim.name.split('-r')[0]}-r{log.api_kills}", port=victim.port)
            wait_until_serving(f"http://127.0.0.1:{proc.port}", proc)

        return start

    def restart_worker() -> None:
        fleet.worker()

    def kill(role: str, restart: float) -> None:
        running = sorted(fleet.running(role), key=lambda p: p.name)
        if len(running) < 2:  # keep one of each alive: kills bunched together wait for a restart
            pending.append((now() + 1.0, lambda: kill(role, restart)))
            return
        if role == "worker":
            held = holders(engine)
            busy = [p for p in running if p.popen.pid in held]
            victim = rng.choice(busy or running)
            fleet.sigkill(victim)
            log.worker_kills += 1
            if victim.popen.pid in held:
                log.killed_holding_rows += 1
                log.stranded_ids |= set(held[victim.popen.pid])
            if restart >= 0:
                pending.append((now() + restart, restart_worker))
        else:
            victim = rng.choice(running)
            fleet.sigkill(victim)
            log.api_kills += 1
            pending.append((now() + restart, restart_api(victim)))

    for at, role, restart in schedule.events:
        pending.append((at, lambda role=role, restart=restart: kill(role, restart)))  # type: ignore[misc]

    while pending:
        pending.sort(key=lambda item: item[0])
        at, action = pending.pop(0)
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        action()
    log.rows_stranded = len(log.stranded_ids)


# ---- the test -----------------------------------------------------------------------------------------------------


def outbox_counts(engine: Engine, tenant_id: str) -> Counter[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage.status, func.count())
            .where(col(OutboxMessage.tenant_id) == tenant_id)
            .group_by(col(OutboxMessage.status))
        ).all()
    return Counter({status: int(count) for status, count in rows})


def stored_by_source(engine: Engine, tenant_id: str, kind: str) -> dict[tuple[str, str], list[str]]:
    table = KINDS[kind].table
    with Session(engine) as session:
        rows = session.exec(
            select(table.source_system, table.source_id, table.id).where(col(table.tenant_id) == tenant_id)
        ).all()
    stored: dict[tuple[str, str], list[str]] = {}
    for system, value, record_id in rows:
        stored.setdefault((system, value), []).append(record_id)
    return stored


def test_sigkilled_workers_and_api_processes_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("TANDEM_PROCESS_FAULTS_SEED") or random.SystemRandom().randrange(1, 10**6))
    print(f"\nprocess faults: seed {seed} (TANDEM_PROCESS_FAULTS_SEED={seed} repeats the schedule)")
    schedule = FaultSchedule.make(seed)
    began = time.monotonic()
    with throwaway_postgres() as url, start_sekmet(tmp_path / "sekmet") as ehr:
        settings = make_settings(url, sync_allowed_hosts=LOOPBACK_HOSTS, sync_require_https=False)
        with TestClient(create_app(settings), raise_server_exceptions=False) as setup_client:
            sync_app = SyncApp(setup_client, settings)
            tenant = sync_app.tenant()
            target = sync_app.target(tenant, ehr.base_url, push=[*PUSH_KINDS, *ALERT_KINDS])
            token = mint_dev_token(settings, tenant=tenant, role="clinician")
            fleet = Fleet(url, tmp_path)
            try:
                apis = [fleet.api("api-a"), fleet.api("api-b")]
                for _ in range(WORKERS):
                    fleet.worker()
                bases = [f"http://127.0.0.1:{api.port}" for api in apis]
                for api, base in zip(apis, bases, strict=True):
                    wait_until_serving(base, api)

                stop = threading.Event()
                clients = [LoadClient(bases, {"Authorization": f"Bearer {token}"}, stop, n) for n in range(CLIENTS)]
                faults = FaultLog()
                with ThreadPoolExecutor(CLIENTS) as pool:
                    futures = [pool.submit(client.run) for client in clients]
                    started = time.monotonic()
                    try:
                        inject(fleet, schedule, random.Random(seed), sync_app.engine, started, faults)
                        time.sleep(2.0)  # load on the restarted processes too
                    finally:
                        stop.set()
                    logs = [future.result(timeout=RESEND_DEADLINE + 60) for future in futures]
                load_seconds = time.monotonic() - started

                drain_started = time.monotonic()
                counts = outbox_counts(sync_app.engine, tenant)
                while any(counts[s] for s in OPEN_STATUSES) and time.monotonic() - drain_started < DRAIN_DEADLINE:
                    time.sleep(0.5)
                    counts = outbox_counts(sync_app.engine, tenant)
                drain_seconds = time.monotonic() - drain_started
                died = fleet.died_unasked()
                live_workers = len(fleet.running("worker"))
            except BaseException:
                print(fleet.log_tails())
                raise
            finally:
                fleet.kill_all()

            unexpected = [problem for log in logs for problem in log.unexpected]
            assert not unexpected, unexpected
            assert not died, (died, fleet.log_tails())
            assert not any(counts[s] for s in OPEN_STATUSES), (f"outbox not drained: {dict(counts)}", fleet.log_tails())
            assert set(counts) == {"sent"}, dict(counts)  # no dead letters, nothing refused
            assert faults.worker_kills == WORKER_KILLS and faults.api_kills == API_KILLS

            # Every acknowledged create is stored exactly once, under the id the client was given, and nothing else.
            created = [c for log in logs for c in log.created]
            lost: list[Created] = []
            duplicates = 0
            stored_count = 0
            for kind in {c.kind for c in created}:
                stored = stored_by_source(sync_app.engine, tenant, kind)
                stored_count += sum(len(ids) for ids in stored.values())
                duplicates += sum(len(ids) - 1 for ids in stored.values())
                mine = [c for c in created if c.kind == kind]
                lost += [c for c in mine if stored.get((c.source_system, c.source_value)) != [c.record_id]]
                assert set(stored) == {(c.source_system, c.source_value) for c in mine}, f"unexplained {kind}"
            assert not lost, lost[:5]
            assert duplicates == 0
            with Session(sync_app.engine) as session:
                for patient_id, given_name in (u for log in logs for u in log.updates.items()):
                    patient = session.get(Patient, patient_id)
                    assert patient is not None and patient.given_name == given_name

            # The peer: one copy of every record the target takes, equal to what we send now (the updates
            # included). The load also writes kinds this target is not sent (appointments), left out here.
            # Each enrollment's urgent findings (the load's PHQ-9s answer item 9 positive) and progress note too.
            records = with_alerts([(c.kind, c.record_id) for c in created if c.kind in PUSH_KINDS])
            assert {c.kind for c in created} - set(PUSH_KINDS), "the load writes only pushed kinds: widen it"
            with ehr.client() as peer:
                found = check_peer_holds_exactly_one_copy(sync_app, peer, tenant, target, records, ehr.metadata())

    statuses: Counter[int] = sum((log.statuses for log in logs), Counter())
    requests = sum(log.requests for log in logs)
    connection_errors = sum(log.connection_errors for log in logs)
    resent_found = sum(1 for c in created if c.status == 200)
    updates = sum(len(log.updates) for log in logs)
    print(
        f"process faults: seed {seed}; {CLIENTS} clients, 2 API processes, {WORKERS} workers (lease {LEASE_SECONDS} s);"
        f" load {load_seconds:.0f} s: {requests} requests sent, responses {dict(sorted(statuses.items()))}, "
        f"{connection_errors} connection errors resent; kills injected: {faults.worker_kills} workers "
        f"({faults.killed_holding_rows} holding rows, {faults.rows_stranded} rows stranded) + {faults.api_kills} API "
        f"processes; records acknowledged {len(created)} ({resent_found} found stored on a resend) + {updates} "
        f"updates ({sum(log.updates_read_back for log in logs)} read back); stored {stored_count}; records lost "
        f"{len(lost)}, duplicates in the database {duplicates}; outbox {sum(counts.values())} rows all sent, drain "
        f"{drain_seconds:.1f} s after the load with {live_workers} workers; peer resources {found['resources']}, "
        f"duplicates at the peer {found['duplicates']}; total {time.monotonic() - began:.0f} s"
    )
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses.keys() <= {200, 201, 412}, statuses
    assert found["duplicates"] == 0
    assert connection_errors > 0, "no request met a killed API process"


def test_a_worker_outlives_a_database_outage(tmp_path: Path) -> None:
    """A `tandem sync worker` that meets a database refusing connections (a failover, a restart) waits and carries
    on; it used to exit with the OperationalError, and with --processes N nobody started it again."""
    with throwaway_postgres() as url, start_sekmet(tmp_path / "sekmet") as ehr:
        settings = make_settings(url, sync_allowed_hosts=LOOPBACK_HOSTS, sync_require_https=False)
        with TestClient(create_app(settings), raise_server_exceptions=False) as setup_client:
            sync_app = SyncApp(setup_client, settings)
            tenant = sync_app.tenant()
            target = sync_app.target(tenant, ehr.base_url, push=[*PUSH_KINDS, *ALERT_KINDS])
            fleet = Fleet(url, tmp_path)
            switch = DatabaseSwitch(url)
            try:
                worker = fleet.worker()
                deadline = time.monotonic() + 60
                while (
                    worker.alive
                    and "database unavailable" not in worker.log.read_text()
                    and time.monotonic() < deadline
                ):
                    switch.outage(2.5)  # the idle worker polls every second: it meets the refusal
                assert "database unavailable" in worker.log.read_text(), fleet.log_tails()
                assert worker.alive, fleet.log_tails()
                # It still delivers: a record written after the outage reaches the peer.
                patient = sync_app.driver(tenant).patient()
                while outbox_counts(sync_app.engine, tenant)["sent"] < 1 and time.monotonic() < deadline + 60:
                    time.sleep(0.2)
                assert dict(outbox_counts(sync_app.engine, tenant)) == {"sent": 1}, fleet.log_tails()
                assert worker.alive and not fleet.died_unasked()
            finally:
                fleet.kill_all()
                switch.close()
            with ehr.client() as peer:
                found = check_peer_holds_exactly_one_copy(
                    sync_app, peer, tenant, target, [("patients", patient)], ehr.metadata()
                )
    assert found["duplicates"] == 0
