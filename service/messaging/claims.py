"""Claiming due patient messages under a lease, and settling them: the sync outbox's rules (service/sync/leases.py)
for the self-report message outbox (self_report_messages, service/self_report/tables.py).

A sender claims rows that are due (pending, or failed and their retry time passed) or whose lease ran out (a
killed sender's rows come back), never a reminder while its invitation's message is still open. PostgreSQL claims
with FOR UPDATE SKIP LOCKED, so two API replicas' sweeps never send one message twice at the same time. A
settling writes only while the claim is still ours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from service.db.unit_of_work import UnitOfWork, unit_of_work
from service.self_report.tables import InvitationMessage

# A message is open while it may still be sent: a reminder waits behind its invitation's open message.
OPEN_MESSAGE_STATUSES = ("pending", "in_flight", "failed")


def due_at(now: datetime) -> Any:
    return or_(
        and_(col(InvitationMessage.status).in_(("pending", "failed")), col(InvitationMessage.next_attempt_at) <= now),
        and_(col(InvitationMessage.status) == "in_flight", col(InvitationMessage.claimed_until) < now),
    )


def claim(
    engine: Engine, sender_id: str, *, now: datetime, limit: int, lease_seconds: int, tenant_id: str | None = None
) -> list[InvitationMessage]:
    """Due rows, oldest first, now in flight under our lease; tenant_id: only that tenant's (a per-tenant sender)."""
    older = aliased(InvitationMessage)
    blocked = exists().where(
        and_(
            col(older.tenant_id) == col(InvitationMessage.tenant_id),
            col(older.invitation_id) == col(InvitationMessage.invitation_id),
            col(older.id) < col(InvitationMessage.id),
            col(older.status).in_(OPEN_MESSAGE_STATUSES),
        )
    )
    query = select(InvitationMessage).where(due_at(now), ~blocked).order_by(col(InvitationMessage.id)).limit(limit)
    if tenant_id is not None:
        query = query.where(col(InvitationMessage.tenant_id) == tenant_id)
    with unit_of_work(engine) as session:
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=InvitationMessage)
        rows = list(session.exec(query))
        if rows:
            until = now + timedelta(seconds=lease_seconds)
            session.execute(
                update(InvitationMessage)
                .where(col(InvitationMessage.id).in_([r.id for r in rows]))
                .values(status="in_flight", claimed_by=sender_id, claimed_until=until, updated_at=now)
            )
            session.expunge_all()
            for row in rows:
                row.status, row.claimed_by, row.claimed_until = "in_flight", sender_id, until
    return rows


def settle(session: UnitOfWork, row: InvitationMessage, sender_id: str, values: dict[str, Any]) -> bool:
    """The row's new column values (the claim ends), while it is still ours; False when another sender took it."""
    result = session.execute(
        update(InvitationMessage)
        .where(
            col(InvitationMessage.id) == row.id,
            col(InvitationMessage.claimed_by) == sender_id,
            col(InvitationMessage.status) == "in_flight",
        )
        .values(claimed_by=None, claimed_until=None, **values)
    )
    return bool(getattr(result, "rowcount", 0))
