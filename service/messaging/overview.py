"""What operators see of patient messages, beside the EHR sync's dead letters: counts by status, and the messages
that need a person (dead letters, and "cannot be sent" for want of an address), newest first. Replaying one puts
it back in the queue, due now, with its attempts reset (the invitation is asked again before it is sent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.errors import RecordConflict, RecordNotFound
from service.self_report.tables import InvitationMessage

STATUSES = ("pending", "in_flight", "failed", "sent", "dead", "cannot_send", "cancelled")
NEEDS_A_PERSON = ("dead", "cannot_send")
SHOWN = 100


@dataclass(frozen=True)
class MessageProblem:
    id: int
    patient_id: str
    kind: str  # invitation | reminder
    status: str  # dead | cannot_send
    channel: str
    attempts: int
    words: str
    updated_at: datetime


@dataclass(frozen=True)
class MessageOverview:
    counts: dict[str, int]
    problems: list[MessageProblem]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def message_overview(session: Session, tenant_id: str) -> MessageOverview:
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in session.exec(
        select(InvitationMessage.status, func.count())
        .where(col(InvitationMessage.tenant_id) == tenant_id)
        .group_by(col(InvitationMessage.status))
    ).all():
        counts[str(status)] = int(count)
    rows = session.exec(
        select(InvitationMessage)
        .where(col(InvitationMessage.tenant_id) == tenant_id, col(InvitationMessage.status).in_(NEEDS_A_PERSON))
        .order_by(col(InvitationMessage.updated_at).desc(), col(InvitationMessage.id).desc())
        .limit(SHOWN)
    ).all()
    problems = [
        MessageProblem(
            id=int(row.id or 0),
            patient_id=row.patient_id,
            kind=row.kind,
            status=row.status,
            channel=row.channel,
            attempts=row.attempts,
            words=row.last_error or row.status,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return MessageOverview(counts, problems)


def replay_message(session: Session, tenant_id: str, message_id: int) -> InvitationMessage:
    """A dead or cannot-be-sent message due again now (after a fix: the server, the settings, the patient's
    address); part of the caller's transaction."""
    row = session.get(InvitationMessage, message_id)
    if row is None or row.tenant_id != tenant_id:
        raise RecordNotFound("patient message", str(message_id))
    if row.status not in NEEDS_A_PERSON:
        raise RecordConflict(f"patient message {message_id} is {row.status}: only a dead or unsendable one is replayed")
    now = now_utc()
    row.status, row.attempts, row.next_attempt_at, row.updated_at = "pending", 0, now, now
    row.last_error = "replayed by an administrator"
    session.add(row)
    session.flush()
    return row
