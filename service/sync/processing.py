"""Processing claimed outbox rows: plan (planning.py), deliver (delivery.py, or batching.py for a claim's rows
together), settle (settling.py). Every failure of an attempt is classified once (outcomes.failure_of) and lands on
its row; each settling is one unit of work (service.db.unit_of_work.unit_of_work). The loop that claims rows and keeps
their leases is worker.py.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from service.db.unit_of_work import unit_of_work
from service.outbox import OutboxMessage
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync import auth as sync_auth
from service.sync.batching import deliver_plans_batched
from service.sync.capabilities import CAPABILITIES, Capabilities, CapabilityCache
from service.sync.client import FhirClient, RequestLog
from service.sync.delivery import Delivery, deliver_plan
from service.sync.outcomes import TARGET_FAILURES, TARGET_OFF, DeliveryFailure, DeliveryResult, failure_of
from service.sync.planning import Planned, RecordPlan, plan_for_target
from service.sync.settling import Settled, settle, store_outcomes

logger = logging.getLogger("tandem.sync")


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


@dataclass
class _Carried:
    """A row going in the shared Bundles, with its delivery and the two logs of its attempt."""

    row: OutboxMessage
    delivery: Delivery
    own: list[RequestLog]  # the row's own (fallback) requests
    bundles: list[RequestLog] = field(default_factory=list)  # the shared Bundles that carried it


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

    def plan(self, row: OutboxMessage, target: SyncTarget, capabilities: Capabilities) -> Planned:
        """What the row's record becomes for this target, and which of our references the target already holds.
        Raises the DeliveryFailure of a row held back by a dead letter (planning.held_by_dead_letters)."""
        [planned] = self.plan_many([row], target, capabilities)
        if isinstance(planned, DeliveryFailure):
            raise planned
        return planned

    def plan_many(
        self, rows: list[OutboxMessage], target: SyncTarget, capabilities: Capabilities
    ) -> list[Planned | DeliveryFailure]:
        """planning.plan_for_target for a claim's rows of one target (one tenant's)."""
        tenant_ids = {row.tenant_id for row in rows}
        if len(tenant_ids) != 1:
            raise ValueError("a target's rows belong to one tenant")
        with Session(self.engine, expire_on_commit=False) as session:  # reads only
            return plan_for_target(
                session,
                tenant_id=tenant_ids.pop(),
                target_id=target.id,
                rows=[(row.record_kind, row.record_id) for row in rows],
                capabilities=capabilities,
                canonical_base=self.settings.canonical_base,
                code_map=target.code_map or {},
            )

    def _target(self, target_id: str) -> SyncTarget | None:
        with Session(self.engine, expire_on_commit=False) as session:  # reads only
            return session.get(SyncTarget, target_id)

    def process(self, row: OutboxMessage) -> str:
        """One attempt at one row, one by one; returns the row's new status."""
        log: list[RequestLog] = []
        target = self._target(row.target_id)
        result: DeliveryResult | None = None
        failure: DeliveryFailure | None = None
        if target is None or not target.enabled:
            result = DeliveryResult("not_supported", TARGET_OFF)
        else:
            client = FhirClient(
                target, self.settings, row.correlation_id, self.tokens, log.append, self.http, rate_limit=True
            )
            try:
                capabilities = self.capabilities(client)
                planned, known, delivered = self.plan(row, target, capabilities)
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
        return self._finish(row, result, failure, log)

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
            target = self._target(target_id)
            if target is None or not target.enabled or len(group) == 1:
                statuses += [self.process(row) for row in group]
                continue
            statuses += self._process_group(target, group)
        return statuses

    def _process_group(self, target: SyncTarget, rows: list[OutboxMessage]) -> list[str]:
        shared: list[RequestLog] = []
        client = FhirClient(
            target, self.settings, rows[0].correlation_id, self.tokens, shared.append, self.http, rate_limit=True
        )
        try:
            capabilities = self.capabilities(client)
        except Exception:  # the one-by-one path classifies the failure and reports it on each row
            return [self.process(row) for row in rows]
        if not capabilities.batch:
            return [self.process(row) for row in rows]
        statuses: list[str] = []
        carried: list[_Carried] = []
        plans: list[Planned | DeliveryFailure | None]
        try:
            plans = list(self.plan_many(rows, target, capabilities))
        except Exception:  # planned one by one below, so one bad record cannot hold back the others
            logger.exception("planning %s outbox rows together failed; planning them one by one", len(rows))
            plans = [None] * len(rows)
        for row, plan in zip(rows, plans, strict=True):
            if isinstance(plan, DeliveryFailure):
                statuses.append(self._finish(row, None, plan, []))
                continue
            try:
                planned, known, delivered = plan or self.plan(row, target, capabilities)
            except Exception:  # the one-by-one path plans it again and records whatever goes wrong on the row
                statuses.append(self.process(row))
                continue
            if not isinstance(planned, RecordPlan):
                statuses.append(self._finish(row, planned, None, []))
                continue
            own: list[RequestLog] = []
            own_client = FhirClient(target, self.settings, row.correlation_id, self.tokens, own.append, self.http)
            delivery = Delivery(
                own_client,
                planned,
                capabilities,
                tenant_id=row.tenant_id,
                known=known,
                delivered=delivered,
                use_batch=True,
            )
            carried.append(_Carried(row, delivery, own))
        if not carried:
            return statuses

        def on_request(positions: list[int]) -> None:
            # the shared Bundle request is logged on every row it carried, and counted once
            if shared:
                self.stats.requests += len(shared)
                for position in positions:
                    carried[position].bundles.extend(shared)
                shared.clear()

        outcomes: list[DeliveryResult | DeliveryFailure]
        try:
            outcomes = deliver_plans_batched(client, [c.delivery for c in carried], on_request=on_request)
        except Exception as error:
            logger.exception("batched delivery of %s outbox rows failed unexpectedly", len(carried))
            outcomes = [failure_of(error).copy() for _ in carried]
        settled = [
            self.settle(
                c.row,
                None if isinstance(outcome, DeliveryFailure) else outcome,
                outcome if isinstance(outcome, DeliveryFailure) else None,
                c.bundles + c.own,
                own_requests=len(c.own),
            )
            for c, outcome in zip(carried, outcomes, strict=True)
        ]
        return statuses + self.record(settled)  # the batch's outcomes in one unit of work

    def _finish(
        self, row: OutboxMessage, result: DeliveryResult | None, failure: DeliveryFailure | None, log: list[RequestLog]
    ) -> str:
        [status] = self.record([self.settle(row, result, failure, log, own_requests=len(log))])
        return status

    def settle(
        self,
        row: OutboxMessage,
        result: DeliveryResult | None,
        failure: DeliveryFailure | None,
        log: list[RequestLog],
        *,
        own_requests: int,  # of `log`, the requests not counted yet (shared Bundles are counted once)
    ) -> Settled:
        """The row's new state after this attempt (its next: row.attempts + 1), counted in the stats; stored by
        `record`."""
        settled = settle(
            row,
            row.attempts + 1,
            result,
            failure,
            log,
            max_attempts=self.settings.sync_max_attempts,
            rng=self.rng,
        )
        self.stats.requests += own_requests
        self.stats.add(settled.status)
        return settled

    def record(self, settled: list[Settled]) -> list[str]:
        """Store settled attempts in one unit of work; their statuses, in order."""
        with unit_of_work(self.engine) as session:
            store_outcomes(session, settled, worker_id=self.worker_id)
        return [s.status for s in settled]
