"""Transaction Bundle ingest through POST /fhir: entries/s, its ratio to the fhir.resources parse floor, and the
peak RSS of the API process while it ingests.

The Bundle holds the clinical records of seeded demo patients (scored PHQ-9 QuestionnaireResponses,
MedicationAdministrations, CBT Encounters) as our own outbound mapping writes them; their patients and
enrollments are loaded first through the store (setup, not timed).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import Session

from bench.common import Database, api_server, log
from bench.data import context, demo, make_row, public_of, store_load
from service.demo import DemoPatient
from service.demo_loader import _kind_of
from service.record_fhir import resources_of

# Elements our outbound mapping writes that a sending EHR would not: ids and links to our own CarePlans.
DROP = ("id", "meta", "supportingInformation", "basedOn", "partOf")


def patients_for(entries: int, offset: int = 0) -> list[DemoPatient]:
    chosen, total = [], 0
    for patient in demo(offset + 400).patients[offset:]:
        chosen.append(patient)
        total += len(patient.records)
        if total >= entries:
            break
    return chosen


def build_bundle(db: Database, tenant_id: str, patients: list[DemoPatient], entries: int) -> dict[str, Any]:
    loaded = store_load(db, tenant_id, patients, demo(1).practitioners, records=False)
    ctx = context(tenant_id, db)
    base = db.settings().canonical_base
    bundle_entries: list[dict[str, Any]] = []
    with Session(db.engine) as session, session.no_autoflush:
        for patient, patient_id, enrollment_id in zip(patients, loaded.patients, loaded.enrollments, strict=True):
            for record in patient.records:
                kind = _kind_of(record)
                linked = record.model_copy(update={"patient_id": patient_id, "enrollment_id": enrollment_id})
                resource = resources_of(kind.path, public_of(kind, make_row(session, ctx, kind, linked)), base)[0]
                resource = {k: v for k, v in resource.items() if k not in DROP}
                bundle_entries.append(
                    {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
                )
                if len(bundle_entries) == entries:
                    return {"resourceType": "Bundle", "type": "transaction", "entry": bundle_entries}
    return {"resourceType": "Bundle", "type": "transaction", "entry": bundle_entries}


def parse_floor(body: bytes, repeats: int = 3) -> float:
    """Seconds to parse the Bundle JSON and validate every entry's resource with fhir.resources (R4B, as
    fhir_mappings uses), best of `repeats`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        parsed = json.loads(body)
        for entry in parsed["entry"]:
            resource = entry["resource"]
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        best = min(best, time.perf_counter() - start)
    return best


def run(db: Database, *, entries: int = 1000) -> dict[str, Any]:
    warm_tenant, tenant_id = db.tenant(), db.tenant()
    warm = build_bundle(db, warm_tenant, patients_for(20, offset=300), 20)
    bundle = build_bundle(db, tenant_id, patients_for(entries), entries)
    body = json.dumps(bundle).encode()
    counts: dict[str, int] = {}
    for entry in bundle["entry"]:
        counts[entry["resource"]["resourceType"]] = counts.get(entry["resource"]["resourceType"], 0) + 1
    floor = parse_floor(body)
    with api_server(db) as server:
        headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            answer = client.post(
                "/fhir",
                content=json.dumps(warm),
                headers={**headers, "Authorization": f"Bearer {db.token(warm_tenant)}"},
            )
            assert answer.status_code == 200, answer.text[:2000]
            rss_before, _ = server.rss_kb()
            peak = [rss_before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak.append(server.rss_kb()[0])
                    done.wait(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            start = time.perf_counter()
            answer = client.post(
                "/fhir", content=body, headers={**headers, "Authorization": f"Bearer {db.token(tenant_id)}"}
            )
            elapsed = time.perf_counter() - start
            done.set()
            sampler.join()
            assert answer.status_code == 200, answer.text[:2000]
            statuses = {e["response"]["status"] for e in answer.json()["entry"]}
            assert statuses == {"201"}, statuses
            _, hwm = server.rss_kb()
    n = len(bundle["entry"])
    result = {
        "entries": n,
        "by_type": counts,
        "body_kb": round(len(body) / 1024),
        "seconds": round(elapsed, 3),
        "entries_per_s": round(n / elapsed, 1),
        "floor_seconds": round(floor, 3),
        "floor_entries_per_s": round(n / floor, 1),
        "ratio_to_floor": round(elapsed / floor, 2),
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_peak_mb": round(max(max(peak), 0) / 1024, 1),
        "rss_hwm_mb": round(hwm / 1024, 1),
    }
    log(f"{db.kind} bundle: {result}")
    return result
