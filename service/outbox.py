"""The outbox: one row per record change per EHR target, written in the transaction that changed the record.

Workers deliver rows at least once; the effect at the EHR is made idempotent by our identifier on every resource.
Rows of one patient and target are delivered in order (a row waits while an older one of the same patient and
target is not finished).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, Index, insert
from sqlmodel import Field, Session, SQLModel, col, select

from service.clock import now_utc
from service.db.types import UtcDateTime
from service.tenant_targets import tenant_targets

OutboxStatus = Literal["pending", "in_flight", "sent", "failed", "dead", "not_supported"]
Operation = Literal["upsert", "delete"]
# Statuses a row can still leave by itself; the others are final until an operator replays them.
OPEN_STATUSES = ("pending", "in_flight", "failed")


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "sync_outbox"
    __table_args__ = (
        Index("ix_sync_outbox_due", "status", "next_attempt_at"),
        Index("ix_sync_outbox_target_patient", "target_id", "patient_id", "id"),
        Index("ix_sync_outbox_tenant_target_status", "tenant_id", "target_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    target_id: str = Field(foreign_key="sync_targets.id", max_length=36)
    record_kind: str = Field(max_length=48)
    record_id: str = Field(max_length=36)
    record_version: int
    patient_id: str | None = Field(default=None, max_length=36)
    operation: str = Field(max_length=16)
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UtcDateTime)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_status_code: int | None = None
    last_error: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    correlation_id: str = Field(max_length=36)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


def enqueue(
    session: Session,
    *,
    tenant_id: str,
    record_kind: str,
    record_id: str,
    record_version: int,
    patient_id: str | None,
    operation: Operation = "upsert",
    came_from_target: str | None = None,
) -> int:
    """Add a row for every enabled target that takes this kind; returns how many. Part of the caller's transaction.

    A record pulled from a target is not echoed back to it.
    """
    targets = _takers(session, tenant_id, record_kind, came_from_target)
    return _add_rows(session, targets, tenant_id, record_kind, record_id, record_version, patient_id, operation)


def requeue(
    session: Session, *, tenant_id: str, record_kind: str, record_id: str, record_version: int, patient_id: str | None
) -> int:
    """Queue a record again for the targets that do not already have it waiting (a waiting or retrying row sends what
    is stored when it is delivered, so a second one would send the same resource twice); returns how many were added.
    With no target taking the kind (the usual case on a plan refresh) it costs one query."""
    targets = _takers(session, tenant_id, record_kind, None)
    if targets:
        waiting = set(
            session.exec(
                select(OutboxMessage.target_id)
                .where(
                    col(OutboxMessage.tenant_id) == tenant_id,
                    col(OutboxMessage.record_kind) == record_kind,
                    col(OutboxMessage.record_id) == record_id,
                    col(OutboxMessage.status).in_(("pending", "failed")),  # in flight may carry the old status
                )
                # Locked: a worker claiming one of these rows at this moment (leases.claim) either waits for this
                # unit of work, and then renders what it wrote, or has claimed it first, and the row then reads as
                # in flight here and a new one is queued. Unlocked, a row seen waiting just before its claim
                # committed was sent with the CarePlan as it was before this refresh, and nothing followed it.
                .with_for_update()
            ).all()
        )
        targets = [target for target in targets if target not in waiting]
    return _add_rows(session, targets, tenant_id, record_kind, record_id, record_version, patient_id, "upsert")


def _takers(session: Session, tenant_id: str, record_kind: str, came_from_target: str | None) -> list[str]:
    """The ids of the tenant's enabled targets that take this kind, but not the one the record came from."""
    return [
        t.id
        for t in tenant_targets(session, tenant_id)
        if t.enabled and record_kind in t.push and t.id != came_from_target
    ]


def enqueue_for_target(
    session: Session, *, tenant_id: str, target_id: str, records: list[tuple[str, str, int, str | None]]
) -> int:
    """Add one pending row for one target per (record kind, record id, version, patient id), in the order given
    (a backfill: service/sync/backfill.py); part of the caller's transaction."""
    now = now_utc()
    rows = [
        _row(tenant_id, target_id, kind, rid, version, patient_id, "upsert", now)
        for kind, rid, version, patient_id in records
    ]
    if rows:
        session.execute(insert(OutboxMessage), rows)
    return len(rows)


def _add_rows(
    session: Session,
    target_ids: list[str],
    tenant_id: str,
    record_kind: str,
    record_id: str,
    record_version: int,
    patient_id: str | None,
    operation: Operation,
) -> int:
    now = now_utc()
    rows = [
        _row(tenant_id, target_id, record_kind, record_id, record_version, patient_id, operation, now)
        for target_id in target_ids
    ]
    if rows:
        session.execute(insert(OutboxMessage), rows)
    return len(rows)


def _row(
    tenant_id: str,
    target_id: str,
    record_kind: str,
    record_id: str,
    record_version: int,
    patient_id: str | None,
    operation: Operation,
    now: datetime,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "target_id": target_id,
        "record_kind": record_kind,
        "record_id": record_id,
        "record_version": record_version,
        "patient_id": patient_id,
        "operation": operation,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "correlation_id": str(uuid.uuid4()),
        "created_at": now,
        "updated_at": now,
    }
