"""What the worklist stores: who a signed-in user is in the care team, each task's snooze/escalation/done state,
and every outreach attempt. Tasks themselves are not stored: they are read from the plan statuses each time."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime
from service.records.base import new_id


class StaffLink(SQLModel, table=True):
    """A signed-in user (the token's subject) is this practitioner: "my patients" and "escalated to me"."""

    __tablename__ = "staff_links"

    tenant_id: str = Field(primary_key=True, max_length=64)
    subject: str = Field(primary_key=True, max_length=255)
    practitioner_id: str = Field(max_length=36)
    linked_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)


class WorklistTaskState(SQLModel, table=True):
    """The latest snooze, escalation and completion of one task (one occurrence of a reason or a due item)."""

    __tablename__ = "worklist_task_states"
    __table_args__ = (Index("ix_worklist_task_states_escalated", "tenant_id", "escalated_to"),)

    tenant_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(primary_key=True, max_length=64)
    enrollment_id: str = Field(max_length=36)
    patient_id: str = Field(max_length=36)
    snoozed_until: date | None = None
    snooze_reason: str | None = Field(default=None, max_length=1000)
    snoozed_by: str | None = Field(default=None, max_length=255)
    escalated_to: str | None = Field(default=None, max_length=36)
    escalation_note: str | None = Field(default=None, max_length=2000)
    escalated_by: str | None = Field(default=None, max_length=255)
    escalated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    done_by: str | None = Field(default=None, max_length=255)
    done_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)


class OutreachAttempt(SQLModel, table=True):
    """One attempt to reach the patient about a task; kept, never edited."""

    __tablename__ = "outreach_attempts"
    __table_args__ = (
        Index("ix_outreach_attempts_task", "tenant_id", "task_id"),
        Index("ix_outreach_attempts_patient", "tenant_id", "patient_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64)
    task_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=36)
    channel: str = Field(max_length=16)
    outcome: str = Field(max_length=16)
    note: str = Field(default="", max_length=2000)
    attempted_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    attempted_by: str = Field(max_length=255)
