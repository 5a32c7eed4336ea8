"""Rows taken under a lease from an outbox table: the EHR outbox (sync_outbox, service/sync/leases.py), the
patient-message outbox (self_report_messages, service/messaging/claims.py) and the subscription notifications
(subscription_notifications, service/sync/subscription_delivery.py) follow the same rules.

A row is due while `pending`, or `failed` with its retry time (`next_attempt_at`) passed, or `in_flight` under a
lease (`claimed_until`) that ran out: a killed claimant's rows come back. A row waits while an older row of its
group (the same target and patient; the same invitation) is still open, so a group's rows go out in order.
PostgreSQL claims with `SELECT … FOR UPDATE SKIP LOCKED`, so claimants never wait on each other nor take one row
twice; SQLite runs the claim under BEGIN IMMEDIATE (service/db/engine.py), one writer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from service.db.unit_of_work import unit_of_work

Row = TypeVar("Row")


def due_rows(table: Any, now: datetime) -> Any:
    """The clause for rows a claimant would take at `now`."""
    return or_(
        and_(col(table.status).in_(("pending", "failed")), col(table.next_attempt_at) <= now),
        and_(col(table.status) == "in_flight", col(table.claimed_until) < now),
    )


def claim_rows(
    engine: Engine,
    table: type[Row],
    claimant: str,
    *,
    now: datetime,
    limit: int,
    lease_seconds: int,
    in_order_of: Sequence[str],
    open_statuses: Sequence[str],
    tenant_id: str | None = None,
) -> list[Row]:
    """Due rows, oldest first, now `in_flight` under our lease (plain snapshots: nothing to flush); in_order_of
    names the columns of a row's group; tenant_id: only that tenant's."""
    t: Any = table
    older: Any = aliased(t)
    blocked = exists().where(
        and_(
            *(col(getattr(older, name)) == col(getattr(t, name)) for name in in_order_of),
            col(older.id) < col(t.id),
            col(older.status).in_(open_statuses),
        )
    )
    query = select(t).where(due_rows(t, now), ~blocked).order_by(col(t.id)).limit(limit)
    if tenant_id is not None:
        query = query.where(col(t.tenant_id) == tenant_id)
    with unit_of_work(engine) as session:
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=t)
        rows: list[Any] = list(session.exec(query))
        if rows:
            until = now + timedelta(seconds=lease_seconds)
            claimed: dict[str, Any] = {"status": "in_flight", "claimed_by": claimant, "claimed_until": until}
            if hasattr(t, "updated_at"):  # the notification queue keeps no such column
                claimed["updated_at"] = now
            session.execute(update(t).where(col(t.id).in_([r.id for r in rows])).values(**claimed))
            session.expunge_all()
            for row in rows:
                row.status, row.claimed_by, row.claimed_until = "in_flight", claimant, until
    return rows
