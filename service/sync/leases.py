"""Leases on outbox rows: a worker claims due rows, keeps its claim while it delivers, and gives back what it did
not start. Each claim, renewal and release is one unit of work (service.db.unit_of_work.unit_of_work).

Claiming: rows `pending`/`failed` whose `next_attempt_at` passed, or `in_flight` rows whose lease
(`claimed_until`) expired (a killed worker's rows come back this way). A row is never claimed while an older row
of the same target and patient is unfinished, so each patient's changes reach a target in order. PostgreSQL:
`SELECT … FOR UPDATE SKIP LOCKED`, so workers never wait on each other; SQLite: the claim runs under BEGIN
IMMEDIATE (service/db/engine.py), one writer at a time. Settling a row (settling.py) writes only while its
lease is still ours (`claimed_by`), so a worker that outlived its lease does not overwrite a newer claim.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, update
from sqlmodel import col

from service.clock import now_utc
from service.db.leased_rows import claim_rows, due_rows
from service.db.unit_of_work import unit_of_work
from service.outbox import OPEN_STATUSES, OutboxMessage
from service.records import tenant as _tenant_table  # noqa: F401 - FK target of the outbox, for a bare worker process

logger = logging.getLogger("tandem.sync")
DEFAULT_LEASE_SECONDS = 120


def due_at(now: datetime) -> Any:
    """Rows a worker would take at `now`: due (pending, or failed and its retry time passed), or in flight under a
    lease that ran out."""
    return due_rows(OutboxMessage, now)


def claim(
    engine: Engine, worker_id: str, *, limit: int, lease_seconds: int, tenant_id: str | None = None
) -> list[OutboxMessage]:
    return claim_rows(
        engine, OutboxMessage, worker_id, now=now_utc(), limit=limit, lease_seconds=lease_seconds,
        in_order_of=("target_id", "patient_id"), open_statuses=OPEN_STATUSES, tenant_id=tenant_id,
    )  # fmt: skip


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
    with unit_of_work(engine) as session:
        result = session.execute(
            update(OutboxMessage)
            .where(_still_ours(ids, worker_id))
            .values(status="pending", claimed_by=None, claimed_until=None, updated_at=now_utc())
        )
    return int(getattr(result, "rowcount", 0) or 0)


def renew(engine: Engine, worker_id: str, row_id: int, lease_seconds: int) -> bool:
    """Extend our claim on a row; False when it is no longer ours (its lease ran out and another worker took it)."""
    return row_id in renew_many(engine, worker_id, [row_id], lease_seconds)


def renew_many(engine: Engine, worker_id: str, row_ids: list[int], lease_seconds: int) -> set[int]:
    """Extend our claim on a batch's rows in one transaction; returns the ids still ours."""
    if not row_ids:
        return set()
    with unit_of_work(engine) as session:
        renewed = set(
            session.execute(
                update(OutboxMessage)
                .where(_still_ours(row_ids, worker_id))
                .values(claimed_until=now_utc() + timedelta(seconds=lease_seconds))
                .returning(col(OutboxMessage.id))
            ).scalars()
        )
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
