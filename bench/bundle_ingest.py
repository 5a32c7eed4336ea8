"""Transaction Bundle ingest through POST /fhir, side by side with sekmet-fhir: entries/s for Tandem and for
sekmet on the very same Bundle, their ratio, Tandem's ratio to the fhir.resources parse floor, and the peak RSS
of Tandem's API process while it ingests.

The Bundle holds the clinical records of seeded demo patients (scored PHQ-9 QuestionnaireResponses,
MedicationAdministrations, CBT Encounters) as our own outbound mapping writes them; their patients and
enrollments are loaded first through the store (setup, not timed). sekmet (started in the same run, on its own
SQLite file) gets the same Bundle bytes; its setup (not timed) is the resources the entries reference
(`Patient/<Tandem id>`), read from Tandem and PUT to sekmet under the same ids (update-as-create), so both
servers store the same entries with the same references, resolvable on both.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import httpx
from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import Session

from bench.common import Database, Server, api_server, copy_to_peer, literal_references, log, sekmet_server
from bench.data import Loaded, context, demo, make_row, public_of, store_load
from service.demo import DemoPatient
from service.demo_loader import _kind_of
from service.record_fhir import Kind, resources_of
from service.record_store.kinds import RecordKind

# Elements our outbound mapping writes that a sending EHR would not: ids and links to our own CarePlans.
DROP = ("id", "meta", "supportingInformation", "basedOn", "partOf")
T = TypeVar("T")
FHIR_HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def patients_for(entries: int, offset: int = 0) -> list[DemoPatient]:
    chosen, total = [], 0
    for patient in demo(offset + 400).patients[offset:]:
        chosen.append(patient)
        total += len(patient.records)
        if total >= entries:
            break
    return chosen


def build_bundle(
    db: Database, tenant_id: str, patients: list[DemoPatient], entries: int, *, only: RecordKind | None = None
) -> dict[str, Any]:
    """The patients (and enrollments) loaded into the tenant, and a transaction Bundle of up to `entries` of
    their clinical records (only those of kind `only`, if given) as inbound FHIR resources."""
    loaded = store_load(db, tenant_id, patients, demo(1).practitioners, records=False)
    return bundle_of(db, tenant_id, patients, loaded, entries, only=only)


def bundle_of(
    db: Database,
    tenant_id: str,
    patients: list[DemoPatient],
    loaded: Loaded,
    entries: int,
    *,
    only: RecordKind | None = None,
) -> dict[str, Any]:
    """A transaction Bundle of the clinical records of patients already loaded (`loaded`, same order)."""
    ctx = context(tenant_id, db)
    base = db.settings().canonical_base
    bundle_entries: list[dict[str, Any]] = []
    with Session(db.engine) as session, session.no_autoflush:
        for patient, patient_id, enrollment_id in zip(patients, loaded.patients, loaded.enrollments, strict=True):
            for record in patient.records:
                kind = _kind_of(record)
                if only is not None and kind is not only:
                    continue
                linked = record.model_copy(update={"patient_id": patient_id, "enrollment_id": enrollment_id})
                row = make_row(session, ctx, kind, linked)
                resource = resources_of(Kind(kind.path), public_of(kind, row), base)[0]
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


def _post(client: httpx.Client, url: str, body: bytes) -> tuple[float, list[str]]:
    """Seconds to POST the transaction to `url` (the FHIR base), and the entries' response statuses."""
    start = time.perf_counter()
    answer = client.post(url, content=body)
    elapsed = time.perf_counter() - start
    assert answer.status_code == 200, answer.text[:2000]
    return elapsed, [str(e["response"]["status"]) for e in answer.json()["entry"]]


def _tandem_client(server: Server, db: Database, tenant_id: str) -> httpx.Client:
    headers = {**FHIR_HEADERS, "Authorization": f"Bearer {db.token(tenant_id)}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=600)


def _sampled(server: Server, work: Callable[[], T]) -> tuple[T, int, int, int]:
    """work()'s result, and the server's RSS before, at its peak during (sampled every 20 ms), and high-water."""
    before, _ = server.rss_kb()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(server.rss_kb()[0])
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return result, before, max(peak), server.rss_kb()[1]


def run(db: Database, *, sizes: Sequence[int] = (300, 1000)) -> dict[str, Any]:
    warm_tenant = db.tenant()
    warm = json.dumps(build_bundle(db, warm_tenant, patients_for(20, offset=300), 20)).encode()
    prepared = []
    for size in sizes:
        tenant_id = db.tenant()
        bundle = build_bundle(db, tenant_id, patients_for(size), size)
        counts: dict[str, int] = {}
        for entry in bundle["entry"]:
            counts[entry["resource"]["resourceType"]] = counts.get(entry["resource"]["resourceType"], 0) + 1
        body = json.dumps(bundle).encode()
        prepared.append((size, tenant_id, body, counts, literal_references(bundle), parse_floor(body)))
    by_size: dict[str, Any] = {}
    rss = {"before": 0, "peak": 0, "hwm": 0}
    with api_server(db) as server, sekmet_server() as sekmet, sekmet.client(timeout=600) as peer:
        # setup, not timed: what the entries reference exists at sekmet too, with the same ids
        with _tandem_client(server, db, warm_tenant) as tandem:
            copy_to_peer(tandem, peer, literal_references(json.loads(warm)))
            _post(tandem, "/fhir", warm)
        for _, tenant_id, _, _, references, _ in prepared:
            with _tandem_client(server, db, tenant_id) as tandem:
                copy_to_peer(tandem, peer, references)
        _post(peer, sekmet.base_url, warm)
        for size, tenant_id, body, counts, _, floor in prepared:
            with _tandem_client(server, db, tenant_id) as tandem:
                (elapsed, statuses), before, peak, hwm = _sampled(server, partial(_post, tandem, "/fhir", body))
            assert set(statuses) == {"201"}, set(statuses)
            rss = {"before": rss["before"] or before, "peak": max(rss["peak"], peak), "hwm": hwm}
            peer_elapsed, peer_statuses = _post(peer, sekmet.base_url, body)
            assert {s.split()[0] for s in peer_statuses} == {"201"}, set(peer_statuses)
            n = len(statuses)
            by_size[str(size)] = {
                "entries": n,
                "by_type": counts,
                "body_kb": round(len(body) / 1024),
                "seconds": round(elapsed, 3),
                "entries_per_s": round(n / elapsed, 1),
                "floor_seconds": round(floor, 3),
                "floor_entries_per_s": round(n / floor, 1),
                "ratio_to_floor": round(elapsed / floor, 2),
                "sekmet": {"seconds": round(peer_elapsed, 3), "entries_per_s": round(n / peer_elapsed, 1)},
                "ratio_to_sekmet": round(peer_elapsed / elapsed, 3),
            }
            log(f"{db.kind} bundle {size}: {by_size[str(size)]}")
    result = {
        "sizes": [int(s) for s in by_size],
        "by_size": by_size,
        "rss_before_mb": round(rss["before"] / 1024, 1),
        "rss_peak_mb": round(rss["peak"] / 1024, 1),
        "rss_hwm_mb": round(rss["hwm"] / 1024, 1),
    }
    log(f"{db.kind} bundle RSS: {result['rss_before_mb']} MB before, peak {result['rss_peak_mb']} MB")
    return result
