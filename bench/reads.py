"""The 10,000-patient tenant: plan status recompute from the database, the caseload page and FHIR search.

Data: `bulk_load` (bench/data.py) inserts the generated records of 10,000 demo patients, and the FHIR projection
of their clinical records until 100,000 Observations are stored (vital signs, scores), directly with SQL; the
benchmarks then measure only reads (search, caseload) or the recompute that reads those records.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from bench.common import Database, api_server, latency_summary, log
from bench.data import Loaded, bulk_load, demo
from service.caseload.recompute import recompute_patient, recompute_patients
from service.caseload.tables import PlanStatusRow
from service.projection.tables import FhirResourceVersion

LOINC = "http://loinc.org"


def load(db: Database, *, patients: int, observations: int) -> tuple[str, Loaded, float]:
    tenant_id = db.tenant()
    start = time.perf_counter()
    loaded = bulk_load(db, tenant_id, demo(patients), observation_limit=observations)
    elapsed = time.perf_counter() - start
    # Planner statistics, as a database in use has them (PostgreSQL's autovacuum would take a while to get there)
    with db.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    log(
        f"{db.kind} bulk load: {patients} patients, {loaded.records} records, {loaded.observations} Observations "
        f"in {elapsed:.1f} s"
    )
    return tenant_id, loaded, elapsed


def recompute(db: Database, tenant_id: str, loaded: Loaded, *, one_by_one_sample: int) -> dict[str, Any]:
    """Statuses of every patient, read from the stored records: the batched recompute over all patients (one
    transaction), and, for comparison, the per-patient path (`recompute_patient`, one transaction each) on a
    sample."""
    sample = loaded.patients[:one_by_one_sample]
    start = time.perf_counter()
    for patient_id in sample:
        with Session(db.engine) as session:
            recompute_patient(session, tenant_id, patient_id)
            session.commit()
    one_by_one = time.perf_counter() - start
    start = time.perf_counter()
    with Session(db.engine) as session:
        stored = recompute_patients(session, tenant_id, loaded.patients)
        session.commit()
    batched = time.perf_counter() - start
    with Session(db.engine) as session:
        rows = session.exec(
            select(func.count()).select_from(PlanStatusRow).where(col(PlanStatusRow.tenant_id) == tenant_id)
        ).one()
    assert rows == len(loaded.enrollments) == stored, (rows, stored)
    result = {
        "patients": len(loaded.patients),
        "batched_seconds": round(batched, 2),
        "batched_patients_per_s": round(len(loaded.patients) / batched, 1),
        "one_by_one_sample": len(sample),
        "one_by_one_patients_per_s": round(len(sample) / one_by_one, 1) if sample else None,
    }
    log(f"{db.kind} recompute: {result}")
    return result


def _measure(client: httpx.Client, url: str, repeats: int, check: Any = None) -> dict[str, Any]:
    times: list[float] = []
    body: Any = None
    for n in range(repeats + 3):
        start = time.perf_counter()
        answer = client.get(url)
        elapsed = time.perf_counter() - start
        assert answer.status_code == 200, answer.text[:500]
        if n >= 3:  # the first ones warm the caches
            times.append(elapsed)
        body = answer.json()
    if check:
        check(body)
    return latency_summary(times)


def caseload(db: Database, tenant_id: str, loaded: Loaded, *, repeats: int) -> dict[str, Any]:
    coordinator = loaded.coordinators[0]
    queries = {
        # the coordinator's default view: one coordinator's patients, most urgent first
        "coordinator, urgency": f"/api/v1/caseload?coordinator_id={coordinator}&page_size=50&page=2",
        "protocol, by latest score desc": "/api/v1/caseload?protocol_id=iv-ketamine-cbt&sort=latest&descending=true"
        "&page_size=50&page=3",
        "status at_risk, by patient name": "/api/v1/caseload?status=at_risk&sort=patient&page_size=50",
        "phase, by next due": "/api/v1/caseload?phase=induction&sort=next_due&page_size=50",
    }

    def fifty(body: dict[str, Any]) -> None:
        assert body["total"] > 0

    results = {}
    with (
        api_server(db) as server,
        httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {db.token(tenant_id, 'coordinator')}"},
            timeout=60,
        ) as client,
    ):
        for name, url in queries.items():
            results[name] = _measure(client, url, repeats, fifty) | {"url": url}
            results[name]["total"] = client.get(url).json()["total"]
    log(f"{db.kind} caseload: { {k: (v['p95_ms'], v['total']) for k, v in results.items()} }")
    return results


def search(db: Database, tenant_id: str, loaded: Loaded, *, repeats: int) -> dict[str, Any]:
    with Session(db.engine) as session:
        observations = session.exec(
            select(func.count())
            .select_from(FhirResourceVersion)
            .where(
                col(FhirResourceVersion.tenant_id) == tenant_id, col(FhirResourceVersion.resource_type) == "Observation"
            )
        ).one()
        busiest = session.exec(
            select(col(FhirResourceVersion.patient_id), func.count())
            .where(
                col(FhirResourceVersion.tenant_id) == tenant_id, col(FhirResourceVersion.resource_type) == "Observation"
            )
            .group_by(col(FhirResourceVersion.patient_id))
            .order_by(func.count().desc())
            .limit(1)
        ).one()[0]
    queries = {
        "code (PHQ-9 total), newest first": f"/fhir/Observation?code={LOINC}|44261-6&_sort=-date&_count=50",
        "category vital-signs, date range": "/fhir/Observation?category=vital-signs&date=ge2026-10-01"
        "&date=lt2026-11-01&_count=50",
        "one patient, newest first": f"/fhir/Observation?patient=Patient/{busiest}&_sort=-date&_count=50",
        "patient + code + _include": f"/fhir/Observation?patient={busiest}&code={LOINC}|8867-4"
        "&_include=Observation:patient&_count=50",
    }
    results: dict[str, Any] = {"observations": observations}
    with (
        api_server(db) as server,
        httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {db.token(tenant_id)}", "Accept": "application/fhir+json"},
            timeout=60,
        ) as client,
    ):
        for name, url in queries.items():
            page = client.get(url).json()
            results[name] = _measure(client, url, repeats) | {
                "url": url,
                "total": page.get("total"),
                "returned": len(page.get("entry") or []),
            }
        results["deep_page"] = _deep_page(client, observations, repeats)
    shown = {k: (v["p95_ms"], v["total"]) for k, v in results.items() if isinstance(v, dict) and "p95_ms" in v}
    log(f"{db.kind} search: {shown}; deep page: {results['deep_page']}")
    return results


def _deep_page(client: httpx.Client, observations: int, repeats: int) -> dict[str, Any]:
    """One page deep into a broad search (default sort, _lastUpdated), reached by `_offset` and by the `_cursor`
    of the previous page's next link (service/fhir/paging.py): the same 50 Observations either way."""
    position = min(20_000, observations // 2) // 50 * 50
    base = "/fhir/Observation?category=vital-signs&_count=50"
    before = client.get(f"{base}&_offset={position - 50}").json()
    by_cursor = next(link["url"] for link in before["link"] if link["relation"] == "next")
    assert "_cursor=" in by_cursor, by_cursor
    by_offset = f"{base}&_offset={position}"
    same = [[e["resource"]["id"] for e in client.get(url).json()["entry"]] for url in (by_offset, by_cursor)]
    assert same[0] == same[1], "the cursor and the offset must reach the same page"
    return {
        "position": position,
        "offset": _measure(client, by_offset, repeats),
        "cursor": _measure(client, by_cursor, repeats),
    }
