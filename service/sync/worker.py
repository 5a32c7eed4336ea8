"""The delivery worker's loop: claim due outbox rows under a lease (leases.py), deliver them (processing.py),
until told to stop; what was claimed and not started when the stop comes is released.

A database that goes away (failover, restart) does not end a long-running worker: it waits and claims again, and
what it had claimed comes back to whoever claims it once the leases run out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.background import BackgroundThread
from service.outbox import OutboxMessage
from service.settings import Settings
from service.sync.heartbeat import Heartbeat
from service.sync.leases import DEFAULT_LEASE_SECONDS, claim, kept_lease, release, renew, renew_many
from service.sync.processing import Processor, WorkerStats
from service.sync.subscription_delivery import deliver_due as deliver_subscription_notifications

logger = logging.getLogger("tandem.sync")
IDLE_POLL_SECONDS = 1.0
DATABASE_RETRY_SECONDS = 2.0
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _deliver_together(
    engine: Engine, processor: Processor, rows: list[OutboxMessage], stop_event: threading.Event, lease_seconds: int
) -> None:
    """The claimed records as batch Bundles; rows whose lease ran out meanwhile are left to their new owner."""
    stats, worker_id = processor.stats, processor.worker_id
    if stop_event.is_set():
        stats.released += release(engine, worker_id, [r.id for r in rows if r.id is not None])
        return
    ours = renew_many(engine, worker_id, [r.id for r in rows if r.id is not None], lease_seconds)
    live = [row for row in rows if row.id in ours]
    stats.lost += len(rows) - len(live)
    if live:
        with kept_lease(engine, worker_id, [r.id for r in live if r.id is not None], lease_seconds):
            processor.process_many(live)


def _deliver_one_by_one(
    engine: Engine, processor: Processor, rows: list[OutboxMessage], stop_event: threading.Event, lease_seconds: int
) -> None:
    stats, worker_id = processor.stats, processor.worker_id
    for index, row in enumerate(rows):
        if stop_event.is_set():
            stats.released += release(engine, worker_id, [r.id for r in rows[index:] if r.id is not None])
            return
        assert row.id is not None
        # The batch's later rows may have outlived their lease while earlier ones were delivered: a row
        # is started only while it is still ours, and its lease is kept for as long as it takes.
        if not renew(engine, worker_id, row.id, lease_seconds):
            stats.lost += 1
            continue
        with kept_lease(engine, worker_id, row.id, lease_seconds):
            processor.process(row)


def run_worker(
    engine: Engine,
    settings: Settings,
    *,
    worker_id: str,
    stop_event: threading.Event,
    once: bool = False,
    batch: int = 20,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    idle_poll: float = IDLE_POLL_SECONDS,
    progress: Callable[[WorkerStats], None] | None = None,
    processor: Processor | None = None,
    tenant_id: str | None = None,
) -> WorkerStats:
    """Deliver until `stop_event` is set (or, with once=True, until nothing is due). Rows claimed but not
    started when the stop comes are released. tenant_id: only that tenant's rows, outbox and subscription
    notifications (a per-tenant worker). The worker keeps its heartbeat row (heartbeat.py) from start to stop."""
    processor = processor or Processor(engine, settings, worker_id)
    processor.worker_id = worker_id
    stats = processor.stats
    heartbeat = Heartbeat(engine, worker_id, every_seconds=settings.sync_worker_beat_seconds, tenant_id=tenant_id)
    try:
        heartbeat.start()
        while not stop_event.is_set():
            try:
                heartbeat.beat(stats.claimed)
                rows = claim(engine, worker_id, limit=batch, lease_seconds=lease_seconds, tenant_id=tenant_id)
                # FHIR Subscription notifications go by the same worker and rules (subscription_delivery.py)
                notified = deliver_subscription_notifications(
                    engine,
                    settings,
                    processor.http,
                    worker_id,
                    limit=batch,
                    lease_seconds=lease_seconds,
                    tenant_id=tenant_id,
                )
                if not rows and notified:
                    continue
                if not rows:
                    if once:
                        break
                    stop_event.wait(idle_poll)
                    continue
                stats.claimed += len(rows)
                if processor.batches_records:
                    _deliver_together(engine, processor, rows, stop_event, lease_seconds)
                else:
                    _deliver_one_by_one(engine, processor, rows, stop_event, lease_seconds)
            except DATABASE_UNAVAILABLE:
                # A failover or restart of the database must not end a long-running worker (with --processes N
                # nobody would start it again). What it had claimed comes back when the leases run out.
                if once:
                    raise
                logger.warning("database unavailable; the worker retries in %s s", DATABASE_RETRY_SECONDS)
                stop_event.wait(DATABASE_RETRY_SECONDS)
                continue
            if progress is not None:
                progress(stats)
    finally:
        heartbeat.stop()
        processor.http.close()
    return stats


class WorkerThread(BackgroundThread):
    """One delivery worker in a thread of the API process (TANDEM_DEV_WORKER, for development): a replayed
    message is sent without a second terminal. Production runs `tandem sync worker` processes instead."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.worker_id = default_worker_id()

        def run(stop: threading.Event) -> None:
            try:
                run_worker(engine, settings, worker_id=self.worker_id, stop_event=stop)
            except Exception:  # the API must keep serving; the sync page shows the worker dead
                logger.exception("the in-process delivery worker stopped")

        super().__init__("dev-sync-worker", run)
