"""PostgreSQL goes away under load: backends terminated with pg_terminate_backend (from a separate admin
connection) and new connections refused for a while, as a failover or restart would, while writers keep sending
creates to a live uvicorn.

Required: every response is 201 or 503 with Retry-After (never a 500); /readyz says 503 during the outage and 200
after; the service recovers by itself (pool_pre_ping); every create that got a 201 is stored, complete (its FHIR
projection too) and exactly once; resending the refused ones stores them exactly once. Prints the recovery time.

TANDEM_FAULTS_HEAVY=1: more writers, more requests, more outages.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from service.auth.tokens import mint_dev_token
from service.projection.tables import FhirResourceVersion
from service.records.patient import Patient
from tests.builders import API, patient_body
from tests.conftest import make_settings
from tests.live_server import serve
from tests.reliability.pg_faults import DatabaseSwitch, observed_app, register, throwaway_postgres

HEAVY = os.environ.get("TANDEM_FAULTS_HEAVY") == "1"
WRITERS = 6 if HEAVY else 4
MAX_REQUESTS_PER_WRITER = 2000 if HEAVY else 500  # the load runs until the faults are over
OUTAGES = 4 if HEAVY else 2
OUTAGE_SECONDS = 1.5
LOAD_DEADLINE_SECONDS = 120 if HEAVY else 60


@dataclass
class Sent:
    source: str
    status: int
    record_id: str | None
    retry_after: str | None
    at: float


def test_backends_terminated_under_load() -> None:
    with throwaway_postgres() as url:
        settings = make_settings(url, database_pool_size=4)
        app = observed_app(settings)
        tenant = register(app.state.engine, "t-dbfaults")
        token = mint_dev_token(settings, tenant=tenant, role="ehr-system")
        headers = {"Authorization": f"Bearer {token}"}
        switch = DatabaseSwitch(url)
        sent: list[Sent] = []
        lock = threading.Lock()
        stop_load = threading.Event()
        deadline = time.monotonic() + LOAD_DEADLINE_SECONDS
        readiness: list[tuple[float, int]] = []
        outage_windows: list[tuple[float, float]] = []

        with serve(app) as base_url:

            def writer(n: int) -> None:
                with httpx.Client(base_url=base_url, timeout=30) as http:
                    for _ in range(MAX_REQUESTS_PER_WRITER):
                        if stop_load.is_set() or time.monotonic() > deadline:
                            return
                        body = patient_body()
                        response = http.post(f"{API}/patients", json=body, headers=headers)
                        record_id = response.json().get("id") if response.status_code in (200, 201) else None
                        with lock:
                            sent.append(
                                Sent(
                                    body["source"]["value"],
                                    response.status_code,
                                    record_id,
                                    response.headers.get("retry-after"),
                                    time.monotonic(),
                                )
                            )
                        time.sleep(0.01)

            def probe_readiness() -> None:
                with httpx.Client(base_url=base_url, timeout=10) as http:
                    while not stop_load.is_set() and time.monotonic() < deadline:
                        readiness.append((time.monotonic(), http.get("/readyz").status_code))
                        time.sleep(0.1)

            killed = 0
            with ThreadPoolExecutor(WRITERS + 1) as pool:
                futures = [pool.submit(writer, n) for n in range(WRITERS)]
                probe = pool.submit(probe_readiness)
                time.sleep(1.0)  # the load is running
                for _ in range(OUTAGES):
                    start = time.monotonic()
                    killed += switch.outage(OUTAGE_SECONDS)
                    outage_windows.append((start, time.monotonic()))
                    killed += switch.terminate_backends()  # the connections opened right at the end die too
                    time.sleep(1.5)
                time.sleep(1.0)  # load after the last outage
                stop_load.set()
                for future in futures:
                    future.result(timeout=LOAD_DEADLINE_SECONDS + 30)
                probe.result(timeout=30)

            # Recovery: from the end of the last outage to the first 201 and the first ready probe after it.
            last_end = outage_windows[-1][1]
            first_write = min((s.at for s in sent if s.status == 201 and s.at > last_end), default=None)
            first_ready = min((t for t, status in readiness if status == 200 and t > last_end), default=None)
            assert first_write is not None, "no write succeeded after the last outage"
            assert first_ready is not None, "/readyz never recovered"

            # Resend what was refused (same source identifiers): each is stored exactly once now.
            refused = [s for s in sent if s.status != 201]
            with httpx.Client(base_url=base_url, timeout=30) as http:
                resent: Counter[int] = Counter()
                for s in refused:
                    body = patient_body(source={"system": "urn:test:patient", "value": s.source})
                    resent[http.post(f"{API}/patients", json=body, headers=headers).status_code] += 1

        statuses = Counter(s.status for s in sent)
        assert set(statuses) <= {201, 503}, statuses
        assert all(s.retry_after for s in sent if s.status == 503), "a 503 without Retry-After"
        assert statuses[503] > 0, "no request met the outage: the fault was not injected"
        assert any(status == 503 for t, status in readiness if any(a <= t <= b for a, b in outage_windows))
        assert set(resent) <= {200, 201}, resent

        with Session(app.state.engine) as session:
            stored = dict(
                session.exec(
                    select(Patient.source_id, func.count())
                    .where(col(Patient.tenant_id) == tenant)
                    .group_by(col(Patient.source_id))
                ).all()
            )
            projected = set(
                session.exec(
                    select(FhirResourceVersion.resource_id).where(
                        col(FhirResourceVersion.tenant_id) == tenant,
                        col(FhirResourceVersion.resource_type) == "Patient",
                    )
                )
            )
            ids = dict(
                session.exec(select(Patient.source_id, Patient.id).where(col(Patient.tenant_id) == tenant)).all()
            )
        acknowledged = {s.source for s in sent if s.status == 201}
        lost = acknowledged - set(stored)
        duplicates = sum(count - 1 for count in stored.values())
        unexplained = set(stored) - {s.source for s in sent}
        partial = [source for source, record_id in ids.items() if record_id not in projected]
        switch.close()
        app.state.engine.dispose()

    print(
        f"\nDB faults: {len(sent)} writes from {WRITERS} writers, {OUTAGES} outages of {OUTAGE_SECONDS}s + "
        f"{switch.faults} terminate rounds ({killed} backends killed); responses {dict(statuses)}; resent "
        f"{len(refused)} refused -> {dict(resent)}; recovery after the outage: first 201 in "
        f"{first_write - last_end:.2f}s, /readyz 200 in {first_ready - last_end:.2f}s; records lost {len(lost)}, "
        f"duplicates {duplicates}, partial writes {len(partial)}"
    )
    assert not lost, lost
    assert duplicates == 0
    assert not unexplained
    assert not partial
    assert set(stored) == {s.source for s in sent}  # after the resend, every attempted create is stored
