"""EHR sync as the pages show it: outbox counts per target, recent errors, dead letters, and replaying one; the
pull's quarantine and retrying it.

`replay_dead_letter` is a service function (session and context explicit, audited, one unit of work); it lives
here until the sync package grows its own operator functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.access import hidden_patients
from service.clock import now_utc
from service.errors import RecordNotFound
from service.messaging.overview import MessageOverview, message_overview, replay_message
from service.outbox import OutboxMessage
from service.records.patient import Patient
from service.records.sync_target import SyncTarget
from service.sync.failure_words import stored_error_words
from service.sync.quarantine import RetryResult, list_quarantined, retry_for_target

OUTBOX_STATUSES = ("pending", "in_flight", "sent", "failed", "dead", "not_supported")
RECENT_ERRORS = 20
DEAD_LETTERS_SHOWN = 100
ERROR_SUMMARY_CHARS = 600


@dataclass
class TargetCounts:
    target_id: str
    name: str
    enabled: bool
    counts: dict[str, int] = field(default_factory=dict)
    base_url: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    target_id: str
    target_name: str
    record_kind: str
    record_id: str
    record_version: int
    patient_id: str | None
    patient_name: str | None  # None: no patient, or one the caller may not see (restricted)
    status: str
    attempts: int
    last_status_code: int | None
    error: str  # in words: host, what failed, the EHR's OperationOutcome text
    next_attempt_at: Any  # when a failed row is tried again
    updated_at: Any


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    target_id: str
    target_name: str
    resource: str  # "<Type>/<EHR id>"
    reason: str
    attempts: int
    first_seen: Any
    last_seen: Any


@dataclass(frozen=True)
class SyncOverview:
    targets: list[TargetCounts]
    recent_errors: list[OutboxEntry]
    dead_letters: list[OutboxEntry]
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    # Messages to patients (service/messaging): counts, and the dead or unsendable ones with the patients' names
    # (a restricted patient the caller may not see has none).
    patient_messages: MessageOverview = field(default_factory=lambda: MessageOverview({}, []))
    names: dict[str, str] = field(default_factory=dict)


def _targets(session: Session, tenant_id: str) -> dict[str, TargetCounts]:
    found = session.exec(
        select(SyncTarget).where(col(SyncTarget.tenant_id) == tenant_id).order_by(col(SyncTarget.name))
    ).all()
    return {t.id: TargetCounts(t.id, t.name, t.enabled, base_url=t.base_url) for t in found}


def _count_into(targets: dict[str, TargetCounts], rows: Any) -> list[TargetCounts]:
    for target_id, status, count in rows:
        if target_id in targets:
            targets[target_id].counts[str(status)] = int(count)
    return list(targets.values())


def patient_names(session: Session, ctx: RequestContext, patient_ids: Iterable[str | None]) -> dict[str, str]:
    """The names of these patients for the page's links, leaving out the restricted ones the caller may not see."""
    wanted = {p for p in patient_ids if p} - hidden_patients(session, ctx)
    if not wanted:
        return {}
    rows = session.exec(
        select(Patient.id, Patient.family_name, Patient.given_name, Patient.name_text).where(
            col(Patient.tenant_id) == ctx.tenant_id, col(Patient.id).in_(sorted(wanted))
        )
    ).all()
    return {pid: ", ".join(n for n in (family, given) if n) or text or "(no name)" for pid, family, given, text in rows}


def outbox_entry(message: OutboxMessage, targets: dict[str, TargetCounts], names: dict[str, str]) -> OutboxEntry:
    assert message.id is not None
    target = targets.get(message.target_id)
    return OutboxEntry(
        id=message.id,
        target_id=message.target_id,
        target_name=target.name if target else message.target_id,
        record_kind=message.record_kind,
        record_id=message.record_id,
        record_version=message.record_version,
        patient_id=message.patient_id,
        patient_name=names.get(message.patient_id or ""),
        status=message.status,
        attempts=message.attempts,
        last_status_code=message.last_status_code,
        error=stored_error_words(message.last_error, message.last_status_code, target.base_url if target else ""),
        next_attempt_at=message.next_attempt_at,
        updated_at=message.updated_at,
    )


def read_sync_overview(session: Session, ctx: RequestContext) -> SyncOverview:
    """Per target counts by outbox status, the latest errors and the dead letters; audited as a list."""
    ctx.intent = AuditIntent("list", "sync-outbox")
    targets = _targets(session, ctx.tenant_id)
    counted = session.exec(
        select(OutboxMessage.target_id, OutboxMessage.status, func.count())
        .where(col(OutboxMessage.tenant_id) == ctx.tenant_id)
        .group_by(col(OutboxMessage.target_id), col(OutboxMessage.status))
    ).all()
    per_target = _count_into(targets, counted)
    errors = session.exec(
        select(OutboxMessage)
        .where(
            col(OutboxMessage.tenant_id) == ctx.tenant_id,
            col(OutboxMessage.status).in_(("failed", "dead")),
            col(OutboxMessage.last_error).is_not(None),
        )
        .order_by(col(OutboxMessage.updated_at).desc(), col(OutboxMessage.id).desc())
        .limit(RECENT_ERRORS)
    ).all()
    dead = session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.tenant_id) == ctx.tenant_id, col(OutboxMessage.status) == "dead")
        .order_by(col(OutboxMessage.updated_at).desc(), col(OutboxMessage.id).desc())
        .limit(DEAD_LETTERS_SHOWN)
    ).all()
    quarantined = [
        QuarantineEntry(
            id=int(q.id or 0),
            target_id=q.target_id,
            target_name=targets[q.target_id].name if q.target_id in targets else q.target_id,
            resource=f"{q.resource_type}/{q.remote_id}",
            reason=q.reason[:ERROR_SUMMARY_CHARS],
            attempts=q.attempts,
            first_seen=q.first_seen,
            last_seen=q.last_seen,
        )
        for q in list_quarantined(session, ctx.tenant_id)
    ]
    messages = message_overview(session, ctx.tenant_id)
    patient_ids = [m.patient_id for m in [*errors, *dead]] + [p.patient_id for p in messages.problems]
    names = patient_names(session, ctx, patient_ids)
    overview = SyncOverview(
        targets=per_target,
        recent_errors=[outbox_entry(m, targets, names) for m in errors],
        dead_letters=[outbox_entry(m, targets, names) for m in dead],
        quarantined=quarantined,
        patient_messages=messages,
        names=names,
    )
    record_success(session, ctx, status_code=200, patient_ids=patient_ids)
    return overview


def patient_sync_state(session: Session, tenant_id: str, patient_id: str) -> list[TargetCounts]:
    """Counts by outbox status per target of one patient's records (call after the patient's read is audited)."""
    targets = _targets(session, tenant_id)
    if not targets:
        return []
    counted = session.exec(
        select(OutboxMessage.target_id, OutboxMessage.status, func.count())
        .where(
            col(OutboxMessage.tenant_id) == tenant_id,
            col(OutboxMessage.target_id).in_(list(targets)),
            col(OutboxMessage.patient_id) == patient_id,
        )
        .group_by(col(OutboxMessage.target_id), col(OutboxMessage.status))
    ).all()
    session.rollback()
    return [t for t in _count_into(targets, counted) if t.total or t.enabled]


def replay_dead_letter(session: Session, ctx: RequestContext, message_id: int) -> OutboxMessage:
    """Put a dead letter back in the queue: pending, no attempts, due now. Only a dead row of the caller's tenant.

    The EHR's last error is kept until the next attempt overwrites it, so the operator can still see why it died.
    """
    ctx.intent = AuditIntent("update", "sync-outbox", record_id=str(message_id))
    message = session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.tenant_id) == ctx.tenant_id, col(OutboxMessage.id) == message_id)
        .with_for_update()
    ).first()
    if message is None or message.status != "dead":
        raise RecordNotFound("dead letter", str(message_id))
    ctx.intent.patient_id = message.patient_id
    now = now_utc()
    message.status = "pending"
    message.attempts = 0
    message.next_attempt_at = now
    message.claimed_by = None
    message.claimed_until = None
    message.updated_at = now
    session.add(message)
    record_success(session, ctx, status_code=200, patient_ids=[message.patient_id])
    return message


def replay_patient_message(session: Session, ctx: RequestContext, message_id: int) -> int:
    """A dead or unsendable patient message queued again (service/messaging/overview.py); audited as an update."""
    ctx.intent = AuditIntent("update", "patient-messages", record_id=str(message_id))
    message = replay_message(session, ctx.tenant_id, message_id)
    ctx.intent.patient_id = message.patient_id
    record_success(session, ctx, status_code=200, patient_ids=[message.patient_id])
    return message_id


def retry_quarantine(session: Session, ctx: RequestContext, target_id: str) -> RetryResult:
    """The page's retry button: every refused item of the target taken in again, audited as an update."""
    ctx.intent = AuditIntent("update", "sync-quarantine", record_id=target_id)
    result = retry_for_target(session, ctx, target_id)
    record_success(session, ctx, status_code=200)
    return result
