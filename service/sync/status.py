"""What operators see: per-target counts, dead letters (inspect, replay), the per-message log, policy refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.errors import RecordNotFound
from service.outbox import OutboxMessage
from service.records.sync_target import SyncTarget
from service.sync.outcomes import TARGET_OFF
from service.sync.tables import SyncAttempt

STATUSES = ("pending", "in_flight", "sent", "failed", "dead", "not_supported")


class TargetStatus(BaseModel):
    target_id: str
    counts: dict[str, int] = Field(description="Outbox rows per status: " + ", ".join(STATUSES))
    last_success_at: datetime | None
    last_error: dict[str, Any] | None = Field(description="The most recent failure (dead or failed row)")
    last_error_at: datetime | None


class AttemptLog(BaseModel):
    attempt: int
    method: str
    url: str
    status_code: int | None
    outcome: str
    duration_ms: int
    at: datetime


class OutboxEntry(BaseModel):
    id: int
    target_id: str
    record_kind: str
    record_id: str
    record_version: int
    patient_id: str | None
    status: str
    attempts: int
    correlation_id: str
    last_status_code: int | None
    last_error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class OutboxDetail(OutboxEntry):
    log: list[AttemptLog]


class ReplayResult(BaseModel):
    replayed: int


def _target(session: Session, tenant_id: str, target_id: str) -> SyncTarget:
    target = session.get(SyncTarget, target_id)
    if target is None or target.tenant_id != tenant_id:
        raise RecordNotFound("EHR sync target", target_id)
    return target


def _entry(row: OutboxMessage) -> OutboxEntry:
    return OutboxEntry.model_validate(row.model_dump())


def target_status(session: Session, tenant_id: str, target_id: str) -> TargetStatus:
    _target(session, tenant_id, target_id)
    where = (col(OutboxMessage.tenant_id) == tenant_id, col(OutboxMessage.target_id) == target_id)
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in session.execute(
        select(OutboxMessage.status, func.count()).where(*where).group_by(col(OutboxMessage.status))
    ).all():
        counts[str(status)] = int(count)
    last_success = session.execute(select(func.max(OutboxMessage.delivered_at)).where(*where)).scalar()
    failing = session.exec(
        select(OutboxMessage)
        .where(*where, col(OutboxMessage.status).in_(("failed", "dead")))
        .order_by(col(OutboxMessage.updated_at).desc())
        .limit(1)
    ).first()
    return TargetStatus(
        target_id=target_id,
        counts=counts,
        last_success_at=last_success,
        last_error=failing.last_error if failing else None,
        last_error_at=failing.updated_at if failing else None,
    )


def list_dead_letters(
    session: Session, tenant_id: str, *, target_id: str | None = None, limit: int = 100
) -> list[OutboxEntry]:
    query = select(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant_id, col(OutboxMessage.status) == "dead")
    if target_id is not None:
        query = query.where(col(OutboxMessage.target_id) == target_id)
    return [_entry(r) for r in session.exec(query.order_by(col(OutboxMessage.id)).limit(limit))]


def outbox_detail(session: Session, tenant_id: str, outbox_id: int) -> OutboxDetail:
    """One message with its request log (every attempt, every request)."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None or row.tenant_id != tenant_id:
        raise RecordNotFound("outbox message", str(outbox_id))
    attempts = session.exec(
        select(SyncAttempt).where(col(SyncAttempt.outbox_id) == outbox_id).order_by(col(SyncAttempt.id))
    )
    log = [AttemptLog.model_validate(a.model_dump()) for a in attempts]
    return OutboxDetail(**_entry(row).model_dump(), log=log)


def replay(
    session: Session,
    tenant_id: str,
    *,
    outbox_id: int | None = None,
    target_id: str | None = None,
    with_failed: bool = False,
) -> int:
    """Send dead letters again from the first attempt: one (outbox_id), a target's, or all of the tenant's; with
    `with_failed`, the rows waiting out a backoff too (sent now, counted from the first attempt again).
    Returns how many were queued; the caller's unit of work commits."""
    statuses = ("dead", "failed") if with_failed else ("dead",)
    query = update(OutboxMessage).where(
        col(OutboxMessage.tenant_id) == tenant_id, col(OutboxMessage.status).in_(statuses)
    )
    if outbox_id is not None:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.tenant_id != tenant_id:
            raise RecordNotFound("outbox message", str(outbox_id))
        query = query.where(col(OutboxMessage.id) == outbox_id)
    if target_id is not None:
        _target(session, tenant_id, target_id)
        query = query.where(col(OutboxMessage.target_id) == target_id)
    now = now_utc()
    result = session.execute(
        query.values(
            status="pending", attempts=0, next_attempt_at=now, claimed_by=None, claimed_until=None, updated_at=now
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def requeue_set_aside(session: Session, tenant_id: str, target_id: str) -> int:
    """The target's rows set aside because it was disabled when their turn came (outcomes.TARGET_OFF), queued again
    from the first attempt: re-enabling a target sends what waited for it. Returns how many."""
    rows = session.exec(
        select(OutboxMessage).where(
            col(OutboxMessage.tenant_id) == tenant_id,
            col(OutboxMessage.target_id) == target_id,
            col(OutboxMessage.status) == "not_supported",
        )
    ).all()
    now = now_utc()
    count = 0
    for row in rows:
        if (row.last_error or {}).get("message") != TARGET_OFF:
            continue  # the EHR cannot take the kind: that is still true
        row.status, row.attempts, row.next_attempt_at, row.updated_at = "pending", 0, now, now
        row.claimed_by = row.claimed_until = None
        session.add(row)
        count += 1
    session.flush()
    return count


def policy_refusals(session: Session, tenant_id: str, patient_id: str) -> list[OutboxEntry]:
    """Dead letters of this patient that a target refused on policy (break-the-glass, consent): shown on the
    patient's status so a coordinator can act; never retried by themselves."""
    rows = session.exec(
        select(OutboxMessage)
        .where(
            col(OutboxMessage.tenant_id) == tenant_id,
            col(OutboxMessage.patient_id) == patient_id,
            col(OutboxMessage.status) == "dead",
        )
        .order_by(col(OutboxMessage.id))
    )
    return [_entry(r) for r in rows if (r.last_error or {}).get("policy_refusal")]
