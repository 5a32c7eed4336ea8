"""The delivery worker: claims due outbox rows under a lease, delivers them, records the outcome.

Claiming: rows `pending`/`failed` whose `next_attempt_at` passed, or `in_flight` rows whose lease
(`claimed_until`) expired (a killed worker's rows come back this way). A row is never claimed while an older row
of the same target and patient is unfinished, so each patient's changes reach a target in order. PostgreSQL:
`SELECT … FOR UPDATE SKIP LOCKED`, so workers never wait on each other; SQLite: the claim runs under BEGIN
IMMEDIATE (service/db/engine.py), one writer at a time.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, and_, bindparam, exists, or_, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.records import tenant as _tenant_table  # noqa: F401 - FK target of the outbox, for a bare worker process
from service.settings import Settings
from service.sync import auth as sync_auth
from service.sync.backoff import parse_retry_after, retry_delay
from service.sync.batching import deliver_plans_batched
from service.sync.capabilities import CAPABILITIES, Capabilities, CapabilityCache
from service.sync.client import FhirClient, RequestLog
from service.sync.delivery import Delivery, deliver_plan
from service.sync.outbox import OPEN_STATUSES, OutboxMessage
from service.sync.outcomes import TARGET_FAILURES, DeliveryFailure, DeliveryResult, failure_of
from service.sync.planning import Planned, RecordPlan, plan_for_target
from service.sync.settling import store_remote
from service.sync.tables import RemoteResource, SyncAttempt
from service.sync.targets import SyncTarget

logger = logging.getLogger("tandem.sync")
DEFAULT_LEASE_SECONDS = 120
DEFAULT_MAX_ATTEMPTS = 8
IDLE_POLL_SECONDS = 1.0
DATABASE_RETRY_SECONDS = 2.0
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


def max_attempts(settings: Settings) -> int:
    return settings.sync_max_attempts


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerStats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    not_supported: int = 0
    requests: int = 0
    released: int = 0
    lost: int = 0  # claims another worker took over after our lease ran out; not delivered by us

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)


# ---- claiming ---------------------------------------------------------------------------------------------------


def claim(
    engine: Engine, worker_id: str, *, limit: int, lease_seconds: int, tenant_id: str | None = None
) -> list[OutboxMessage]:
    now = now_utc()
    older = aliased(OutboxMessage)
    blocked = exists().where(
        and_(
            col(older.target_id) == col(OutboxMessage.target_id),
            col(older.patient_id) == col(OutboxMessage.patient_id),
            col(older.id) < col(OutboxMessage.id),
            col(older.status).in_(OPEN_STATUSES),
        )
    )
    due = or_(
        and_(col(OutboxMessage.status).in_(("pending", "failed")), col(OutboxMessage.next_attempt_at) <= now),
        and_(col(OutboxMessage.status) == "in_flight", col(OutboxMessage.claimed_until) < now),
    )
    query = select(OutboxMessage).where(due, ~blocked).order_by(col(OutboxMessage.id)).limit(limit)
    if tenant_id is not None:
        query = query.where(col(OutboxMessage.tenant_id) == tenant_id)
    with Session(engine, expire_on_commit=False) as session:
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=OutboxMessage)
        rows = list(session.exec(query))
        if rows:
            until = now + timedelta(seconds=lease_seconds)
            session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_([r.id for r in rows]))
                .values(status="in_flight", claimed_by=worker_id, claimed_until=until, updated_at=now)
            )
            session.expunge_all()  # plain snapshots from here on: nothing to flush
            for row in rows:
                row.status, row.claimed_by, row.claimed_until = "in_flight", worker_id, until
        session.commit()
        return rows


def _still_ours(ids: list[int], worker_id: str) -> Any:
    """Our claimed rows among `ids`: a row whose lease ran out and that another worker claimed is not."""
    return and_(
        col(OutboxMessage.id).in_(ids),
        col(OutboxMessage.claimed_by) == worker_id,
        col(OutboxMessage.status) == "in_flight",
    )


def release(engine: Engine, worker_id: str, ids: list[int]) -> int:
    """Give back claimed rows not started (graceful stop): they are due again at once."""
    if not ids:
        return 0
    with Session(engine) as session:
        result = session.execute(
            update(OutboxMessage)
            .where(_still_ours(ids, worker_id))
            .values(status="pending", claimed_by=None, claimed_until=None, updated_at=now_utc())
        )
        session.commit()
        return int(getattr(result, "rowcount", 0) or 0)


def renew(engine: Engine, worker_id: str, row_id: int, lease_seconds: int) -> bool:
    """Extend our claim on a row; False when it is no longer ours (its lease ran out and another worker took it)."""
    return row_id in renew_many(engine, worker_id, [row_id], lease_seconds)


def renew_many(engine: Engine, worker_id: str, row_ids: list[int], lease_seconds: int) -> set[int]:
    """Extend our claim on a batch's rows in one transaction; returns the ids still ours."""
    if not row_ids:
        return set()
    with Session(engine) as session:
        renewed = set(
            session.execute(
                update(OutboxMessage)
                .where(_still_ours(row_ids, worker_id))
                .values(claimed_until=now_utc() + timedelta(seconds=lease_seconds))
                .returning(col(OutboxMessage.id))
            ).scalars()
        )
        session.commit()
        return renewed


@contextmanager
def kept_lease(engine: Engine, worker_id: str, row_id: int | list[int], lease_seconds: int) -> Iterator[None]:
    """Renew the claim while a row (or the rows of a batch) is being delivered: a slow EHR must not let the lease
    run out under us, or a second worker would deliver the same record at the same time."""
    done = threading.Event()
    row_ids = row_id if isinstance(row_id, list) else [row_id]

    def keep() -> None:
        while not done.wait(lease_seconds / 3):
            try:
                renew_many(engine, worker_id, row_ids, lease_seconds)
            except Exception:  # the delivery itself reports database trouble; this thread only retries
                logger.warning("could not renew the lease of outbox rows %s", row_ids)

    keeper = threading.Thread(target=keep, name=f"lease-{row_ids[0]}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join(timeout=lease_seconds)


# ---- processing one row -----------------------------------------------------------------------------------------


@dataclass
class Processor:
    engine: Engine
    settings: Settings
    worker_id: str
    capability_cache: CapabilityCache = field(default_factory=lambda: CAPABILITIES)
    tokens: sync_auth.TokenCache = field(default_factory=lambda: sync_auth.TOKENS)
    http: httpx.Client = field(
        default_factory=lambda: httpx.Client(
            timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False, trust_env=False
        )
    )
    rng: random.Random = field(default_factory=random.Random)
    use_batch: bool | None = None
    stats: WorkerStats = field(default_factory=WorkerStats)

    def capabilities(self, client: FhirClient) -> Capabilities:
        def fetch() -> dict[str, Any]:
            exchange = client.request("GET", "metadata")
            if not exchange.ok or not isinstance(exchange.body, dict):
                raise DeliveryFailure(
                    f"CapabilityStatement: HTTP {exchange.status_code}",
                    retryable=True,
                    status_code=exchange.status_code,
                    outcome=exchange.body,
                )
            return exchange.body

        return self.capability_cache.get(client.target.id, client.target.base_url, fetch)

    def _plan(self, row: OutboxMessage, target: SyncTarget, capabilities: Capabilities) -> Planned:
        """What the row's record becomes for this target, and which of our references the target already holds.
        Raises the DeliveryFailure of a row held back by a dead letter (planning.held_by_dead_letters)."""
        [planned] = self._plan_many([row], target, capabilities)
        if isinstance(planned, DeliveryFailure):
            raise planned
        return planned

    def _plan_many(
        self, rows: list[OutboxMessage], target: SyncTarget, capabilities: Capabilities
    ) -> list[Planned | DeliveryFailure]:
        """planning.plan_for_target for a claim's rows of one target (one tenant's)."""
        tenant_ids = {row.tenant_id for row in rows}
        if len(tenant_ids) != 1:
            raise ValueError("a target's rows belong to one tenant")
        with Session(self.engine, expire_on_commit=False) as session:
            return plan_for_target(
                session,
                tenant_id=tenant_ids.pop(),
                target_id=target.id,
                rows=[(row.record_kind, row.record_id) for row in rows],
                capabilities=capabilities,
                canonical_base=self.settings.canonical_base,
                code_map=target.code_map or {},
            )

    def process(self, row: OutboxMessage) -> str:
        assert row.id is not None
        attempt = row.attempts + 1
        log: list[RequestLog] = []
        with Session(self.engine, expire_on_commit=False) as session:
            target = session.get(SyncTarget, row.target_id)
        result: DeliveryResult | None = None
        failure: DeliveryFailure | None = None
        if target is None or not target.enabled:
            result = DeliveryResult("not_supported", "the target was removed or disabled")
        else:
            client = FhirClient(
                target, self.settings, row.correlation_id, self.tokens, log.append, self.http, rate_limit=True
            )
            try:
                capabilities = self.capabilities(client)
                planned, known, delivered = self._plan(row, target, capabilities)
                if isinstance(planned, RecordPlan):
                    result = deliver_plan(
                        client,
                        planned,
                        capabilities,
                        tenant_id=row.tenant_id,
                        known=known,
                        delivered=delivered,
                        use_batch=self.use_batch,
                    )
                else:
                    result = planned
            except Exception as error:
                if not isinstance(error, TARGET_FAILURES):
                    logger.exception("delivery of outbox row %s failed unexpectedly", row.id)
                failure = failure_of(error)
        return self._finish(row, attempt, result, failure, log)

    @property
    def batches_records(self) -> bool:
        """Claimed rows go to the target together (batch Bundles across records) unless batching is switched off;
        a target without batch Bundles still gets them one by one (process_many falls back)."""
        return self.use_batch is not False

    def process_many(self, rows: list[OutboxMessage]) -> list[str]:
        """Deliver claimed rows of different patients (the claim gives at most one per patient, so none depends on
        another) with shared batch Bundles per target: see batching.deliver_plans_batched. Rows a Bundle cannot
        carry (target gone or without batch support, nothing to send) and a target's lone row take the one-by-one
        path."""
        statuses: list[str] = []
        by_target: dict[str, list[OutboxMessage]] = {}
        for row in rows:
            by_target.setdefault(row.target_id, []).append(row)
        for target_id, group in by_target.items():
            with Session(self.engine, expire_on_commit=False) as session:
                target = session.get(SyncTarget, target_id)
            if target is None or not target.enabled or len(group) == 1:
                statuses += [self.process(row) for row in group]
                continue
            statuses += self._process_group(target, group)
        return statuses

    def _process_group(self, target: SyncTarget, rows: list[OutboxMessage]) -> list[str]:
        logs: dict[int, list[RequestLog]] = {id(row): [] for row in rows}  # the row's own (fallback) requests
        bundles: dict[int, list[RequestLog]] = {id(row): [] for row in rows}  # the shared Bundles that carried it
        shared: list[RequestLog] = []
        client = FhirClient(
            target, self.settings, rows[0].correlation_id, self.tokens, shared.append, self.http, rate_limit=True
        )
        try:
            capabilities = self.capabilities(client)
        except TARGET_FAILURES:
            return [self.process(row) for row in rows]  # the one-by-one path reports the failure on each row
        if not capabilities.batch:
            return [self.process(row) for row in rows]
        statuses: list[str] = []
        batched: list[tuple[OutboxMessage, Delivery]] = []
        plans: list[Planned | DeliveryFailure | None]
        try:
            plans = list(self._plan_many(rows, target, capabilities))
        except Exception:  # planned one by one below, so one bad record cannot hold back the others
            logger.exception("planning %s outbox rows together failed; planning them one by one", len(rows))
            plans = [None] * len(rows)
        for row, plan in zip(rows, plans, strict=True):
            if isinstance(plan, DeliveryFailure):
                statuses.append(self._finish(row, row.attempts + 1, None, plan, []))
                continue
            try:
                planned, known, delivered = plan or self._plan(row, target, capabilities)
            except Exception:  # the one-by-one path plans it again and records whatever goes wrong on the row
                statuses.append(self.process(row))
                continue
            if not isinstance(planned, RecordPlan):
                statuses.append(self._finish(row, row.attempts + 1, planned, None, []))
                continue
            own_client = FhirClient(
                target, self.settings, row.correlation_id, self.tokens, logs[id(row)].append, self.http
            )
            delivery = Delivery(
                own_client,
                planned,
                capabilities,
                tenant_id=row.tenant_id,
                known=known,
                delivered=delivered,
                use_batch=True,
            )
            batched.append((row, delivery))
        if not batched:
            return statuses

        def carried(positions: list[int]) -> None:
            # the shared Bundle request is logged on every row it carried, and counted once
            if shared:
                self.stats.requests += len(shared)
                for position in positions:
                    bundles[id(batched[position][0])].extend(shared)
                shared.clear()

        outcomes: list[DeliveryResult | DeliveryFailure]
        try:
            outcomes = deliver_plans_batched(client, [d for _, d in batched], on_request=carried)
        except Exception as error:
            logger.exception("batched delivery of %s outbox rows failed unexpectedly", len(batched))
            outcomes = [failure_of(error).copy() for _ in batched]
        settled: list[Settled] = []
        for (row, _), outcome in zip(batched, outcomes, strict=True):
            own = logs[id(row)]
            failure = outcome if isinstance(outcome, DeliveryFailure) else None
            result = None if isinstance(outcome, DeliveryFailure) else outcome
            log = bundles[id(row)] + own
            settled.append(self._settled(row, row.attempts + 1, result, failure, log, own_requests=len(own)))
        with Session(self.engine) as session:  # the batch's outcomes in one transaction
            self._store_outcomes(session, settled)
            session.commit()
        statuses += [s.status for s in settled]
        return statuses

    def _finish(
        self,
        row: OutboxMessage,
        attempt: int,
        result: DeliveryResult | None,
        failure: DeliveryFailure | None,
        log: list[RequestLog],
    ) -> str:
        settled = self._settled(row, attempt, result, failure, log, own_requests=len(log))
        with Session(self.engine) as session:
            self._store_outcomes(session, [settled])
            session.commit()
        return settled.status

    def _settled(
        self,
        row: OutboxMessage,
        attempt: int,
        result: DeliveryResult | None,
        failure: DeliveryFailure | None,
        log: list[RequestLog],
        *,
        own_requests: int,  # of `log`, the requests not counted yet (shared Bundles are counted once)
    ) -> Settled:
        """The row's new state after this attempt (counted in the stats; stored by _store_outcomes)."""
        now = now_utc()
        values: dict[str, Any] = {"attempts": attempt, "updated_at": now, "claimed_by": None, "claimed_until": None}
        if failure is None:
            assert result is not None
            status = result.status
            values |= {"status": status, "last_status_code": None, "next_attempt_at": now}
            if status == "sent":
                values["delivered_at"] = now
                values["last_error"] = {"note": result.reason} if result.reason else None
            else:
                values["last_error"] = {"message": result.reason, "not_supported": True}
            remote = result.remote
        else:
            exhausted = attempt >= max_attempts(self.settings)
            status = "failed" if failure.retryable and not exhausted else "dead"
            error = failure.as_error()
            if failure.retryable and exhausted:
                error["message"] = f"gave up after {attempt} attempts: {error['message']}"
            delay = retry_delay(attempt, retry_after=parse_retry_after(failure.retry_after), rng=self.rng)
            values |= {
                "status": status,
                "last_status_code": failure.status_code,
                "last_error": error,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
            remote = failure.remote
        self.stats.requests += own_requests
        self.stats.add(status)
        return Settled(row, attempt, status, now, values, remote, log)

    def _store_outcomes(self, session: Session, outcomes: list[Settled]) -> None:
        """The rows' attempts, remote ids and new states, in the caller's transaction, with a few statements for
        all of them (a batch's rows are settled together)."""
        store_remote(session, [remote for outcome in outcomes for remote in outcome.remote])
        session.add_all(
            SyncAttempt(
                outbox_id=outcome.row.id,  # type: ignore[arg-type]
                correlation_id=outcome.row.correlation_id,
                attempt=outcome.attempt,
                method=entry.method,
                url=entry.url,
                status_code=entry.status_code,
                outcome=entry.outcome,
                duration_ms=entry.duration_ms,
                at=outcome.at,
            )
            for outcome in outcomes
            for entry in outcome.log
        )
        session.flush()
        # Only while the lease is still ours: a worker that outlived its lease does not overwrite a newer claim.
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for outcome in outcomes:
            values = {f"new_{name}": value for name, value in outcome.values.items()}
            by_columns.setdefault(tuple(sorted(outcome.values)), []).append({"row_id": outcome.row.id, **values})
        table = OutboxMessage.__table__  # type: ignore[attr-defined]
        for columns, params in by_columns.items():
            statement = (
                update(table)
                .where(table.c.id == bindparam("row_id"), table.c.claimed_by == self.worker_id)
                .values({name: bindparam(f"new_{name}") for name in columns})
            )
            session.execute(statement, params)


@dataclass
class Settled:
    row: OutboxMessage
    attempt: int
    status: str
    at: datetime
    values: dict[str, Any]  # the outbox row's new column values
    remote: list[RemoteResource]
    log: list[RequestLog]


# ---- the loop ---------------------------------------------------------------------------------------------------


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
    started when the stop comes are released. tenant_id: only that tenant's rows (a per-tenant worker)."""
    processor = processor or Processor(engine, settings, worker_id)
    processor.worker_id = worker_id
    stats = processor.stats
    try:
        while not stop_event.is_set():
            try:
                rows = claim(engine, worker_id, limit=batch, lease_seconds=lease_seconds, tenant_id=tenant_id)
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
        processor.http.close()
    return stats
