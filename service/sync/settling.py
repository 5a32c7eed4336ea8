"""Settling attempts: an outbox row's new state after an attempt, its request log, and the remote ids its
delivery confirmed, written in the caller's unit of work with a few statements for all of a claim's rows.

A failure is retried with backoff (honouring Retry-After) until `max_attempts`, then the row is a dead letter
with the target's OperationOutcome kept; a policy refusal and other final failures are dead letters at once.
Rows are updated only while this worker's claim on them holds (`claimed_by`): a worker that outlived its lease
does not overwrite a newer claim (leases.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.outbox import OutboxMessage
from service.sync.backoff import parse_retry_after, retry_delay
from service.sync.client import RequestLog
from service.sync.outcomes import DeliveryFailure, DeliveryResult
from service.sync.tables import RemoteResource, SyncAttempt


@dataclass
class Settled:
    row: OutboxMessage
    attempt: int
    status: str
    at: datetime
    values: dict[str, Any]  # the outbox row's new column values
    remote: list[RemoteResource]
    log: list[RequestLog]


def settle(
    row: OutboxMessage,
    attempt: int,
    result: DeliveryResult | None,
    failure: DeliveryFailure | None,
    log: list[RequestLog],
    *,
    max_attempts: int,
    rng: random.Random,
) -> Settled:
    """The row's new state after attempt number `attempt`, which ended with `result` or `failure` (one of them)."""
    now = now_utc()
    values: dict[str, Any] = {"attempts": attempt, "updated_at": now, "claimed_by": None, "claimed_until": None}
    if failure is None:
        if result is None:
            raise ValueError("an attempt ends with a result or a failure")
        status = result.status
        values |= {"status": status, "last_status_code": None, "next_attempt_at": now}
        if status == "sent":
            values["delivered_at"] = now
            values["last_error"] = {"note": result.reason} if result.reason else None
        else:
            values["last_error"] = {"message": result.reason, "not_supported": True}
        remote = result.remote
    else:
        exhausted = attempt >= max_attempts
        status = "failed" if failure.retryable and not exhausted else "dead"
        error = failure.as_error()
        if failure.retryable and exhausted:
            error["message"] = f"gave up after {attempt} attempts: {error['message']}"
        delay = retry_delay(attempt, retry_after=parse_retry_after(failure.retry_after), rng=rng)
        values |= {
            "status": status,
            "last_status_code": failure.status_code,
            "last_error": error,
            "next_attempt_at": now + timedelta(seconds=delay),
        }
        remote = failure.remote
    return Settled(row, attempt, status, now, values, remote, log)


def store_outcomes(session: Session, outcomes: list[Settled], *, worker_id: str) -> None:
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
            .where(table.c.id == bindparam("row_id"), table.c.claimed_by == worker_id)
            .values({name: bindparam(f"new_{name}") for name in columns})
        )
        session.execute(statement, params)


def store_remote(session: Session, rows: list[RemoteResource]) -> None:
    """Upsert (target, record, role) -> remote id/version; part of the caller's transaction. One query for all."""
    if not rows:
        return
    found = session.exec(
        select(RemoteResource).where(
            col(RemoteResource.target_id).in_({row.target_id for row in rows}),
            col(RemoteResource.record_kind).in_({row.record_kind for row in rows}),
            col(RemoteResource.record_id).in_({row.record_id for row in rows}),
        )
    ).all()
    current = {(r.target_id, r.record_kind, r.record_id, r.role): r for r in found}
    for row in rows:
        key = (row.target_id, row.record_kind, row.record_id, row.role)
        existing = current.get(key)
        if existing is None:
            session.add(row)
            current[key] = row
        else:
            for name in ("resource_type", "local_id", "remote_id", "remote_version", "record_version", "updated_at"):
                setattr(existing, name, getattr(row, name))
            session.add(existing)
