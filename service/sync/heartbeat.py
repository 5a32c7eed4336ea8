"""Delivery workers you can see: each worker process keeps one row in `sync_workers` (who, where, since when, its
last beat, how many rows it claimed), so the admin page and a container's health check can tell a live worker
from a dead one without reaching into the process.

A worker beats on each loop of its claim loop and from a timer thread: a delivery to a slow EHR can hold the loop
for longer than the beat interval, and that worker is alive. One that was killed just stops beating; it reads as
dead once its last beat is older than TANDEM_SYNC_WORKER_DEAD_AFTER_SECONDS. A clean stop says so (`stopped_at`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Engine, delete, func, or_
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.db.unit_of_work import unit_of_work
from service.outbox import OutboxMessage
from service.sync.leases import due_at
from service.sync.tables import WorkerHeartbeat

logger = logging.getLogger("tandem.sync")
# A worker row says something for a day after its last beat (the page lists it); after a week it is pruned.
LISTED_FOR = timedelta(days=1)
KEPT_FOR = timedelta(days=7)
WORKERS_LISTED = 50

WorkerLife = Literal["live", "dead", "stopped"]


def life_of(row: WorkerHeartbeat, now: datetime, dead_after: timedelta) -> WorkerLife:
    if row.stopped_at is not None:
        return "stopped"
    return "live" if row.last_beat_at >= now - dead_after else "dead"


class Heartbeat:
    """One worker's row, written on start, on `beat` (each loop; at most once an interval unless its claimed count
    changed), from a timer every interval, and on a clean stop."""

    def __init__(self, engine: Engine, worker_id: str, *, every_seconds: float, tenant_id: str | None = None) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.tenant_id = tenant_id
        self.every = every_seconds
        self.rows_claimed = 0
        self._written: tuple[float, int] | None = None  # (monotonic time, rows claimed) of the last write
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._beat_on_time, name=f"heartbeat-{worker_id}", daemon=True)

    def start(self) -> None:
        """The first beat (and a prune of rows a week old), then the timer. A database away at start does not stop
        the worker: the loop waits for it, and the first beat that gets through writes the row."""
        try:
            with unit_of_work(self.engine) as session:
                session.execute(delete(WorkerHeartbeat).where(col(WorkerHeartbeat.last_beat_at) < now_utc() - KEPT_FOR))
            self._write()
        except Exception:
            logger.warning("could not write the first heartbeat of worker %s", self.worker_id)
        self._timer.start()

    def beat(self, rows_claimed: int) -> None:
        """The loop's beat: written when the claimed count changed or an interval passed since the last write."""
        self.rows_claimed = rows_claimed
        written = self._written
        if written is not None and written[1] == rows_claimed and time.monotonic() - written[0] < self.every:
            return
        self._write()

    def stop(self) -> None:
        self._stop.set()
        if self._timer.is_alive():
            self._timer.join(timeout=self.every + 5)
        try:
            self._write(stopped=True)
        except Exception:  # a worker stopping while the database is away: its row reads as dead, which it is
            logger.warning("could not record the stop of worker %s", self.worker_id)

    def _beat_on_time(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self._write()
            except Exception:  # the loop meets database trouble itself; the timer only tries again
                logger.warning("could not write the heartbeat of worker %s", self.worker_id)

    def _write(self, *, stopped: bool = False) -> None:
        with self._lock:
            claimed = self.rows_claimed
            now = now_utc()
            with unit_of_work(self.engine) as session:
                row = session.get(WorkerHeartbeat, self.worker_id)
                if row is None:  # pruned, or written before a restore of the database: start it again
                    row = WorkerHeartbeat(
                        id=self.worker_id,
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        tenant_id=self.tenant_id,
                        started_at=now,
                        last_beat_at=now,
                    )
                row.last_beat_at = now
                row.rows_claimed = claimed
                if stopped:
                    row.stopped_at = now
                session.add(row)
            self._written = (time.monotonic(), claimed)


@dataclass(frozen=True)
class WorkerState:
    id: str
    host: str
    pid: int
    tenant_id: str | None
    started_at: datetime
    last_beat_at: datetime
    stopped_at: datetime | None
    rows_claimed: int
    life: WorkerLife


@dataclass(frozen=True)
class WorkersOverview:
    workers: list[WorkerState]
    waiting: int  # the tenant's outbox rows a worker would take now
    dead_after_seconds: int

    @property
    def live(self) -> int:
        return sum(1 for w in self.workers if w.life == "live")

    @property
    def unattended(self) -> bool:
        """Rows wait and no live worker would take them."""
        return self.waiting > 0 and self.live == 0


def _serving(tenant_id: str) -> ColumnElement[bool]:
    return or_(col(WorkerHeartbeat.tenant_id).is_(None), col(WorkerHeartbeat.tenant_id) == tenant_id)


def read_workers(session: Session, tenant_id: str, *, now: datetime, dead_after_seconds: int) -> WorkersOverview:
    """The workers that serve the tenant (all tenants', or this one's only) seen in the last day, newest beat
    first, and how many of the tenant's rows are waiting for one."""
    dead_after = timedelta(seconds=dead_after_seconds)
    rows = session.exec(
        select(WorkerHeartbeat)
        .where(_serving(tenant_id), col(WorkerHeartbeat.last_beat_at) >= now - LISTED_FOR)
        .order_by(col(WorkerHeartbeat.last_beat_at).desc(), col(WorkerHeartbeat.id))
        .limit(WORKERS_LISTED)
    ).all()
    waiting = session.exec(
        select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant_id, due_at(now))
    ).one()
    workers = [
        WorkerState(
            id=r.id,
            host=r.host,
            pid=r.pid,
            tenant_id=r.tenant_id,
            started_at=r.started_at,
            last_beat_at=r.last_beat_at,
            stopped_at=r.stopped_at,
            rows_claimed=r.rows_claimed,
            life=life_of(r, now, dead_after),
        )
        for r in rows
    ]
    return WorkersOverview(workers=workers, waiting=int(waiting), dead_after_seconds=dead_after_seconds)


def live_worker_on(
    session: Session, host: str, *, now: datetime, dead_after_seconds: int, worker_id: str | None = None
) -> WorkerHeartbeat | None:
    """A live worker on `host` (or the one named): what `tandem sync worker-ready` asks."""
    query = select(WorkerHeartbeat).where(
        col(WorkerHeartbeat.host) == host,
        col(WorkerHeartbeat.stopped_at).is_(None),
        col(WorkerHeartbeat.last_beat_at) >= now - timedelta(seconds=dead_after_seconds),
    )
    if worker_id is not None:
        query = query.where(col(WorkerHeartbeat.id) == worker_id)
    return session.exec(query.order_by(col(WorkerHeartbeat.last_beat_at).desc())).first()
