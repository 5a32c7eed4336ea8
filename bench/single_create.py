"""Single-record create over HTTP with 16 concurrent clients against uvicorn: requests/s and p50/p95, and the
same load on a bare endpoint that validates the same body and answers 201 without a database (the floor).

Each request is POST /api/v1/ketamine-administrations with a seeded demo administration (with its vital signs)
for one of many loaded patients, so every create runs the whole write path: validation, references, insert,
FHIR projection (the administration and its vital-sign Observations), plan status recompute and CarePlan
projection, audit, outbox.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import httpx

from bench.common import Database, api_server, latency_summary, log
from bench.data import demo, store_load
from service.records.ketamine import KetamineAdministrationCreate


def bodies(patient_ids: list[str], enrollment_ids: list[str], count: int) -> list[dict[str, Any]]:
    """`count` administration bodies, round-robin over the patients, each with a fresh source identifier."""
    templates = [
        r.model_dump(mode="json", exclude_none=True)
        for p in demo(60).patients
        for r in p.records
        if isinstance(r, KetamineAdministrationCreate)
    ]
    out = []
    pairs = itertools.cycle(zip(patient_ids, enrollment_ids, strict=True))
    for n in range(count):
        patient_id, enrollment_id = next(pairs)
        body = {**templates[n % len(templates)], "patient_id": patient_id, "enrollment_id": enrollment_id}
        body["source"] = {"system": "urn:tandem:bench:create", "value": uuid.uuid4().hex}
        out.append(body)
    return out


async def _load(base_url: str, path: str, token: str, work: list[dict[str, Any]], clients: int, seconds: float):
    """`clients` concurrent clients, each sending its next body as soon as the previous answer came, for
    `seconds` (after a short warm-up that is not counted)."""
    headers = {"Authorization": f"Bearer {token}"}
    queue = iter(work)
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as client:

        async def one(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                body = next(queue, None)
                if body is None:
                    return
                start = time.perf_counter()
                answer = await client.post(path, json=body)
                if answer.status_code != 201:
                    errors.append(f"{answer.status_code} {answer.text[:300]}")
                elif record:
                    latencies.append(time.perf_counter() - start)

        warm = time.perf_counter() + min(1.0, seconds / 4)
        await asyncio.gather(*(one(warm, False) for _ in range(clients)))
        start = time.perf_counter()
        await asyncio.gather(*(one(start + seconds, True) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return {"requests": len(latencies), "seconds": round(elapsed, 2), "rps": round(len(latencies) / elapsed, 1)} | (
        latency_summary(latencies)
    )


def run(db: Database, *, clients: int = 16, seconds: float = 8.0, patients: int = 200) -> dict[str, Any]:
    tenant_id = db.tenant()
    tenant = demo(max(patients, 60))
    loaded = store_load(db, tenant_id, tenant.patients[:patients], tenant.practitioners, records=False)
    work = bodies(loaded.patients, loaded.enrollments, 40_000)
    token = db.token(tenant_id)
    with api_server(db) as server:
        bare = asyncio.run(
            _load(server.base_url, "/bench/bare/ketamine-administrations", token, work, clients, seconds / 2)
        )
        real = asyncio.run(_load(server.base_url, "/api/v1/ketamine-administrations", token, work, clients, seconds))
    result = {
        "clients": clients,
        "real": real,
        "bare": bare,
        "ratio_to_bare": round(real["rps"] / bare["rps"], 3),
    }
    log(f"{db.kind} single create: {result}")
    return result
