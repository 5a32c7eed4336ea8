"""Push records to sekmet-fhir (a FHIR R4 server on loopback): records/s one resource per request (identifier
search, then create), and in batch mode (`Processor(use_batch=...)`): the claimed records together, one batch
Bundle of conditional creates per wave (service/sync/batching.py: deliver_plans_batched).

The records (patients, enrollments, administrations with vital signs, CBT sessions, PHQ-9s of seeded demo
patients) are written through the store, which queues them in the outbox for the target; the timed part is the
delivery worker draining that outbox (`run_worker(once=True)`), as `tandem sync worker` does.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bench.common import Database, log
from bench.data import demo, store_load
from service.audit_trail import RequestContext
from service.auth.principal import Principal
from service.db.unit_of_work import unit_of_work
from service.outbox import OutboxMessage
from service.record_store import store
from service.sync.processing import Processor
from service.sync.target_kind import SYNC_TARGETS
from service.sync.targets import SyncTargetCreate
from service.sync.worker import run_worker
from tests.ehr_peer.sekmet_server import start_sekmet

PUSH_KINDS = ["patients", "enrollments", "ketamine-administrations", "cbt-sessions", "questionnaire-responses"]


def _tenant_with_records(db: Database, base_url: str, records: int, offset: int) -> tuple[str, int]:
    tenant_id = db.tenant()
    admin = Principal(subject="bench-admin", tenant_id=tenant_id, role="admin", scopes=frozenset())
    body = {
        "name": f"sekmet {uuid.uuid4().hex[:6]}",
        "base_url": base_url,
        "push": PUSH_KINDS,
        "requests_per_second": 100,  # the highest a target may be set to
    }
    with unit_of_work(db.engine) as session:
        ctx = RequestContext(principal=admin, request_id="bench", settings=db.settings())
        store.create_record(session, ctx, SYNC_TARGETS, SyncTargetCreate.model_validate(body))
    chosen, total = [], 0
    for patient in demo(offset + 200).patients[offset:]:
        chosen.append(patient)
        total += 2 + len(patient.records)
        if total >= records:
            break
    store_load(db, tenant_id, chosen, [], records=True)
    with Session(db.engine) as session:
        queued = session.exec(
            select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant_id)
        ).one()
    return tenant_id, int(queued)


def _drain(db: Database, tenant_id: str, use_batch: bool) -> dict[str, Any]:
    settings = db.settings()
    processor = Processor(db.engine, settings, "bench", use_batch=use_batch)
    start = time.perf_counter()
    stats = run_worker(
        db.engine,
        settings,
        worker_id=f"bench-{uuid.uuid4().hex[:6]}",
        stop_event=threading.Event(),
        once=True,
        tenant_id=tenant_id,
        processor=processor,
        lease_seconds=600,
    )
    elapsed = time.perf_counter() - start
    with Session(db.engine) as session:
        statuses = dict(
            session.exec(
                select(col(OutboxMessage.status), func.count())
                .where(col(OutboxMessage.tenant_id) == tenant_id)
                .group_by(col(OutboxMessage.status))
            ).all()
        )
    delivered = statuses.get("sent", 0) + statuses.get("not_supported", 0)
    return {
        "records": sum(statuses.values()),
        "statuses": statuses,
        "requests": stats.requests,
        "seconds": round(elapsed, 2),
        "records_per_s": round(delivered / elapsed, 1),
    }


def run(db: Database, *, records: int = 1000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-sekmet-") as work, start_sekmet(work) as sekmet:
        one_tenant, queued = _tenant_with_records(db, sekmet.base_url, records, offset=0)
        batch_tenant, _ = _tenant_with_records(db, sekmet.base_url, records, offset=0)
        one = _drain(db, one_tenant, use_batch=False)
        batch = _drain(db, batch_tenant, use_batch=True)
    result = {
        "queued": queued,
        "one_by_one": one,
        "batch": batch,
        "speedup": round(batch["records_per_s"] / one["records_per_s"], 2) if one["records_per_s"] else None,
    }
    log(f"{db.kind} push: {result}")
    return result
