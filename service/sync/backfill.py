"""Backfill: every record of the tenant that a target takes, queued for it once (a new EHR gets the history that
was written before it was registered; the writes since then queued themselves, service/outbox.py).

Idempotent: a record that already has a row for the target (in any state: waiting, sent, dead) or that the target
already holds (a patient a pull linked there, service/sync/patient_links.py; a record a pull took from it, whose
source is the target's, which the write path does not echo back either) is not queued again, so a second run
queues nothing. Kinds go in the record table's order (patients, then enrolments, then their records), so each
patient's rows go out patient first (the outbox sends a patient's rows in row order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.errors import RecordNotFound, invalid
from service.outbox import OPEN_STATUSES, OutboxMessage, enqueue_for_target
from service.record_fhir import SENT_FROM
from service.record_store.kinds import RECORD_KINDS, RecordKind
from service.records.base import PatientRecord
from service.records.sync_target import SyncTarget
from service.sync.tables import RemoteResource
from service.sync.taking import source_system

CHUNK = 500  # records read and queued at a time (and a progress step)
# kind path, records of the kind looked at so far, records of the kind in all
Progress = Callable[[str, int, int], None]


@dataclass
class BackfillSummary:
    target_id: str
    queued: dict[str, int] = field(default_factory=dict)  # kind -> rows added now
    skipped: dict[str, int] = field(default_factory=dict)  # kind -> already queued, sent or held by the target

    @property
    def total_queued(self) -> int:
        return sum(self.queued.values())

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def line(self) -> str:
        """The one summary line the command and the page show."""
        parts = [f"{kind} {count}" for kind, count in self.queued.items() if count]
        detail = f" ({', '.join(parts)})" if parts else ""
        return (
            f"{self.total_queued} record(s) queued{detail}; {self.total_skipped} already queued, sent or held "
            "by the EHR"
        )


@dataclass(frozen=True)
class TargetProgress:
    """Where a target's rows stand: what waits, what was delivered, what needs an operator."""

    waiting: int
    delivered: int
    dead: int
    not_supported: int

    @property
    def total(self) -> int:
        return self.waiting + self.delivered + self.dead + self.not_supported


def backfill(
    session: Session, ctx: RequestContext, target_id: str, *, progress: Progress | None = None
) -> BackfillSummary:
    """Queue for the target every record of the caller's tenant of the kinds it takes that it has not been sent;
    audited as an update of the target. Part of the caller's unit of work."""
    ctx.intent = AuditIntent("update", "sync/targets", record_id=target_id)
    target = session.exec(
        select(SyncTarget)
        .where(col(SyncTarget.id) == target_id, col(SyncTarget.tenant_id) == ctx.tenant_id)
        .with_for_update()  # two backfills of one target at once: the second waits, then finds every row queued
    ).first()
    if target is None:
        raise RecordNotFound("EHR sync target", target_id)
    if not target.enabled:
        raise invalid("enabled", "the target is disabled: enable it first, then backfill (nothing was queued)")
    if not target.push:
        raise invalid("push", "the target takes no record kinds: choose what it is sent first (nothing was queued)")
    summary = BackfillSummary(target.id)
    for kind in RECORD_KINDS:
        for sent in SENT_FROM.get(kind.kind, ()):  # the kind, then those sent from its records (urgent findings)
            if sent in target.push:
                _backfill_kind(session, target, kind, sent, summary, progress)
    record_success(session, ctx, status_code=200)
    return summary


def _backfill_kind(
    session: Session,
    target: SyncTarget,
    kind: RecordKind,
    path: str,
    summary: BackfillSummary,
    progress: Progress | None,
) -> None:
    """Queue the tenant's records of `kind` as `path` (the kind itself, or one sent from its records)."""
    table = kind.table
    total = session.execute(
        select(func.count()).select_from(table).where(col(table.tenant_id) == target.tenant_id)
    ).scalar_one()
    summary.queued[path] = summary.skipped[path] = 0
    seen = 0
    after: tuple[datetime, str] | None = None
    owner = col(table.patient_id) if issubclass(table, PatientRecord) else None
    created, record_id = col(table.created_at), col(table.id)
    theirs = source_system(target)  # what a pull from this target took in is not sent back to it
    while True:
        # In the order they were written (a patient's sessions go out in their order), a page at a time.
        columns = [record_id, col(table.version), created, col(table.source_system)]
        query = select(*columns, *([owner] if owner is not None else [])).where(
            col(table.tenant_id) == target.tenant_id
        )
        if after is not None:
            query = query.where(or_(created > after[0], and_(created == after[0], record_id > after[1])))
        batch = session.execute(query.order_by(created, record_id).limit(CHUNK)).all()
        if not batch:
            break
        after = (batch[-1][2], str(batch[-1][0]))
        ids = [str(row[0]) for row in batch]
        known = _already_there(session, target, path, ids)
        records = [
            (path, str(row[0]), int(row[1]), _patient(kind, row))
            for row in batch
            if str(row[0]) not in known and row[3] != theirs
        ]
        summary.queued[path] += enqueue_for_target(
            session, tenant_id=target.tenant_id, target_id=target.id, records=records
        )
        summary.skipped[path] += len(batch) - len(records)
        seen += len(batch)
        if progress is not None:
            progress(path, seen, int(total))
    if progress is not None and not seen:
        progress(path, 0, 0)


def _patient(kind: RecordKind, row: tuple[object, ...]) -> str | None:
    if not kind.patient_scoped:
        return None
    return str(row[4]) if len(row) > 4 else str(row[0])  # a patient's own row is about the patient


def _already_there(session: Session, target: SyncTarget, kind_path: str, ids: list[str]) -> set[str]:
    """Of these records, those with a row for the target (any state) or a copy the target holds."""
    queued = session.exec(
        select(OutboxMessage.record_id).where(
            col(OutboxMessage.target_id) == target.id,
            col(OutboxMessage.record_kind) == kind_path,
            col(OutboxMessage.record_id).in_(ids),
        )
    ).all()
    held = session.exec(
        select(RemoteResource.record_id).where(
            col(RemoteResource.target_id) == target.id,
            col(RemoteResource.record_kind) == kind_path,
            col(RemoteResource.record_id).in_(ids),
        )
    ).all()
    return {*queued, *held}


def target_progress(session: Session, tenant_id: str, target_id: str) -> TargetProgress:
    """The target's rows: waiting (pending, in flight, retrying), delivered, dead, not supported."""
    counts = dict(
        session.execute(
            select(OutboxMessage.status, func.count())
            .where(col(OutboxMessage.tenant_id) == tenant_id, col(OutboxMessage.target_id) == target_id)
            .group_by(col(OutboxMessage.status))
        ).all()
    )
    return TargetProgress(
        waiting=sum(int(counts.get(s, 0)) for s in OPEN_STATUSES),
        delivered=int(counts.get("sent", 0)),
        dead=int(counts.get("dead", 0)),
        not_supported=int(counts.get("not_supported", 0)),
    )
