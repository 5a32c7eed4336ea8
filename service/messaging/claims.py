"""Claiming due patient messages under a lease, and settling them: the sync outbox's rules (service/sync/leases.py)
for the self-report message outbox (self_report_messages, service/self_report/tables.py).

A sender claims rows that are due (pending, or failed and their retry time passed) or whose lease ran out (a
killed sender's rows come back), never a reminder while its invitation's message is still open. PostgreSQL claims
with FOR UPDATE SKIP LOCKED, so two API replicas' sweeps never send one message twice at the same time. A
settling writes only while the claim is still ours.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import col

from service.db.leased_rows import claim_rows, due_rows
from service.db.unit_of_work import UnitOfWork
from service.self_report.tables import InvitationMessage

# A message is open while it may still be sent: a reminder waits behind its invitation's open message.
OPEN_MESSAGE_STATUSES = ("pending", "in_flight", "failed")


def due_at(now: datetime) -> Any:
    return due_rows(InvitationMessage, now)


def claim(
    engine: Engine, sender_id: str, *, now: datetime, limit: int, lease_seconds: int, tenant_id: str | None = None
) -> list[InvitationMessage]:
    """Due rows, oldest first, now in flight under our lease; tenant_id: only that tenant's (a per-tenant sender).
    A reminder waits while its invitation's message is open."""
    return claim_rows(
        engine, InvitationMessage, sender_id, now=now, limit=limit, lease_seconds=lease_seconds,
        in_order_of=("tenant_id", "invitation_id"), open_statuses=OPEN_MESSAGE_STATUSES, tenant_id=tenant_id,
    )  # fmt: skip


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
