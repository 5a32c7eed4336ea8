"""Single creates over HTTP with 16 concurrent clients against uvicorn: requests/s and p50/p95 of each, beside
the same load on a bare validate-only endpoint (the floor) and, for the FHIR Patient create, on sekmet-fhir
(a third party's FHIR R4 server on its own SQLite file, started in the same run).

- **FHIR Patient**: `POST /fhir/Patient` on Tandem and `POST /Patient` on sekmet, the same bodies in the same
  order (demo patients as Tandem's outbound mapping writes them, each with fresh identifier values: a new MRN,
  so every request is a new patient on both); the floor is `POST /bench/bare/fhir/Patient` (bench/server.py).
- **FHIR QuestionnaireResponse**: `POST /fhir/QuestionnaireResponse`, a PHQ-9 of a loaded patient with a fresh
  identifier (scored on the way in: the total and item Observations, plan status); floor as above.
- **Ketamine administration** (JSON API): `POST /api/v1/ketamine-administrations`, a demo administration with
  its vital signs; the floor is `POST /bench/bare/ketamine-administrations` (the same pydantic model).

Every Tandem create runs the whole write path (validation, references, insert, FHIR projection, plan status,
audit, outbox). The patients and enrollments the records reference are loaded through the store (setup).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from typing import Any

import httpx
from sqlmodel import Session

from bench.bundle_ingest import DROP, bundle_of
from bench.common import Database, api_server, latency_summary, log, sekmet_server
from bench.data import context, demo, make_row, public_of, store_load
from service.record_fhir import Kind, resources_of
from service.record_store.kinds import PATIENTS, QUESTIONNAIRE_RESPONSES
from service.records.ketamine import KetamineAdministrationCreate

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
JSON = {"Content-Type": "application/json"}


def ketamine_bodies(patient_ids: list[str], enrollment_ids: list[str], count: int) -> list[bytes]:
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
        out.append(json.dumps(body).encode())
    return out


def patient_bodies(db: Database, tenant_id: str, count: int) -> list[bytes]:
    """`count` FHIR Patients: the demo patients as Tandem's outbound mapping writes them (no id or meta), each
    identifier given a fresh value, so each is a new patient (a new MRN) wherever it is sent."""
    ctx = context(tenant_id, db)
    base = db.settings().canonical_base
    templates = []
    with Session(db.engine) as session, session.no_autoflush:
        for patient in demo(60).patients:
            row = make_row(session, ctx, PATIENTS, patient.patient)
            resource = resources_of(Kind(PATIENTS.path), public_of(PATIENTS, row), base)[0]
            templates.append({k: v for k, v in resource.items() if k not in DROP})
    run = uuid.uuid4().hex[:8]
    out = []
    for n in range(count):
        template = templates[n % len(templates)]
        identifiers = [{**i, "value": f"{i['value']}-{run}-{n}"} for i in template.get("identifier", [])]
        out.append(json.dumps({**template, "identifier": identifiers}).encode())
    return out


def questionnaire_bodies(db: Database, tenant_id: str, patients: int, loaded: Any, count: int) -> list[bytes]:
    """`count` scored PHQ-9 QuestionnaireResponses of the loaded patients, each with a fresh identifier."""
    chosen = demo(max(patients, 60)).patients[:patients]
    bundle = bundle_of(db, tenant_id, chosen, loaded, 10**9, only=QUESTIONNAIRE_RESPONSES)
    templates = [
        e["resource"] for e in bundle["entry"] if str(e["resource"].get("questionnaire", "")).endswith("/phq-9")
    ]
    assert templates, "the demo patients have PHQ-9 responses"
    out = []
    for n in range(count):
        resource = {**templates[n % len(templates)]}
        resource["identifier"] = {"system": "urn:tandem:bench:create", "value": uuid.uuid4().hex}
        out.append(json.dumps(resource).encode())
    return out


async def _load(url: str, headers: dict[str, str], work: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` concurrent clients POSTing to `url`, each sending its next body as soon as the previous answer
    came, for `seconds` (after a short warm-up that is not counted). Every answer must be 201."""
    queue = iter(work)
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:

        async def one(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                body = next(queue, None)
                if body is None:
                    return
                start = time.perf_counter()
                answer = await client.post(url, content=body)
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
        raise RuntimeError(f"{len(errors)} failed requests to {url}, e.g. {errors[0]}")
    summary: dict[str, Any] = {"requests": len(latencies), "seconds": round(elapsed, 2)}
    summary["rps"] = round(len(latencies) / elapsed, 1)
    return summary | latency_summary(latencies)


API_WORKERS = 2  # one per core of the 2-core machine the targets are set for


def _share(numerator: dict[str, Any], denominator: dict[str, Any]) -> float | None:
    return round(numerator["rps"] / denominator["rps"], 3) if denominator["rps"] else None


def run(db: Database, *, clients: int = 16, seconds: float = 8.0, patients: int = 200) -> dict[str, Any]:
    tenant_id = db.tenant()
    tenant = demo(max(patients, 60))
    chosen = tenant.patients[:patients]
    loaded = store_load(db, tenant_id, chosen, tenant.practitioners, records=False)
    token = {"Authorization": f"Bearer {db.token(tenant_id)}"}
    # enough bodies for the fastest server (a bare endpoint, sekmet) at well over 1,000 requests/s
    count = max(2_000, int(2_000 * seconds) + 2_000)
    fhir_patients = patient_bodies(db, tenant_id, count)
    responses = questionnaire_bodies(db, tenant_id, patients, loaded, count)
    administrations = ketamine_bodies(loaded.patients, loaded.enrollments, count)

    def load(url: str, headers: dict[str, str], work: list[bytes], span: float) -> dict[str, Any]:
        return asyncio.run(_load(url, headers, work, clients, span))

    with api_server(db) as server, sekmet_server() as sekmet:
        base = server.base_url
        fhir = {**FHIR_JSON, **token}
        patient: dict[str, Any] = {
            "bare": load(f"{base}/bench/bare/fhir/Patient", fhir, fhir_patients, seconds / 2),
            "tandem": load(f"{base}/fhir/Patient", fhir, fhir_patients, seconds),
            "sekmet": load(f"{sekmet.base_url}/Patient", FHIR_JSON, fhir_patients, seconds),
        }
        questionnaire: dict[str, Any] = {
            "bare": load(f"{base}/bench/bare/fhir/QuestionnaireResponse", fhir, responses, seconds / 2),
            "tandem": load(f"{base}/fhir/QuestionnaireResponse", fhir, responses, seconds),
        }
        ketamine: dict[str, Any] = {
            "bare": load(
                f"{base}/bench/bare/ketamine-administrations", {**JSON, **token}, administrations, seconds / 2
            ),
            "real": load(f"{base}/api/v1/ketamine-administrations", {**JSON, **token}, administrations, seconds),
        }
    if db.kind == "postgres":
        # Production on PostgreSQL runs several API processes (WEB_CONCURRENCY); SQLite keeps one writer.
        more = patient_bodies(db, tenant_id, count)
        with api_server(db, workers=API_WORKERS) as several:
            patient["tandem_workers"] = load(f"{several.base_url}/fhir/Patient", {**FHIR_JSON, **token}, more, seconds)
        patient["workers"] = API_WORKERS
        patient["workers_ratio_to_sekmet"] = _share(patient["tandem_workers"], patient["sekmet"])
    patient["ratio_to_sekmet"] = _share(patient["tandem"], patient["sekmet"])
    patient["ratio_to_bare"] = _share(patient["tandem"], patient["bare"])
    questionnaire["ratio_to_bare"] = _share(questionnaire["tandem"], questionnaire["bare"])
    ketamine["ratio_to_bare"] = _share(ketamine["real"], ketamine["bare"])
    result = {"clients": clients, "patient": patient, "questionnaire_response": questionnaire, "ketamine": ketamine}
    log(f"{db.kind} single create: {result}")
    return result
