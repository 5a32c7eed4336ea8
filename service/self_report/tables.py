"""The self-report tables: invitations (one link each), the message outbox the delivery channels read, and each
hospital's self-report settings (crisis wording, link lifetime)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime
from service.records.base import new_id


class Invitation(SQLModel, table=True):
    """One questionnaire asked of one patient for one due date, answered through one single-use link."""

    __tablename__ = "self_report_invitations"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        Index("ix_self_report_invitations_patient", "tenant_id", "patient_id", "created_at"),
        # The schedule sends once per patient, instrument and due date (service/self_report/schedule.py).
        Index("ix_self_report_invitations_due", "tenant_id", "patient_id", "instrument", "due_date"),
        Index("ix_self_report_invitations_open", "status", "expires_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    patient_id: str = Field(max_length=36)
    enrollment_id: str | None = Field(default=None, max_length=36)
    instrument: str = Field(max_length=32)
    due_date: date
    channel: str = Field(max_length=16)  # Channel
    language: str = Field(default="en", max_length=16)
    # sha256 of the link's token (hex). The token itself is never stored in the clear: see invitations.py.
    token_hash: str = Field(max_length=64)
    # The token sealed (Fernet) for the delivery channels, which must put the link in a message and a reminder;
    # cleared once the invitation ends (completed, expired, cancelled).
    sealed_token: str | None = Field(default=None, max_length=512)
    status: str = Field(default="sent", max_length=24)  # InvitationStatus; "expired" is also worked out on read
    sent_by: str = Field(max_length=255)  # the token subject, or "schedule" for the measurement schedule
    created_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    opened_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # completed, cancelled or expired
    # Answers saved so far (ItemAnswer JSON), kept until submission so the patient can resume.
    answers: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    # The QuestionnaireResponse written from it: in progress as soon as a crisis answer is saved (evidence for
    # the care team at once), completed on submission.
    response_id: str | None = Field(default=None, max_length=36)


class InvitationMessage(SQLModel, table=True):
    """The patient-message outbox: a row asks a delivery channel (e-mail, SMS webhook) to send one message.

    Written in the transaction that created the invitation. It carries ids and dates only, no clinical content;
    the channel builds the link with `invitations.invitation_link`. Kept apart from sync_outbox, whose rows are
    for EHR targets (every row there names one, and the sync worker claims them all)."""

    __tablename__ = "self_report_messages"
    __table_args__ = (
        Index("ix_self_report_messages_due", "status", "next_attempt_at"),
        Index("ix_self_report_messages_invitation", "invitation_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    kind: str = Field(max_length=24)  # "invitation" (this module); the channels may add "reminder"
    invitation_id: str = Field(foreign_key="self_report_invitations.id", max_length=36)
    patient_id: str = Field(max_length=36)
    channel: str = Field(max_length=16)
    # {"invitation_id", "patient_id", "instrument", "expires_at"}: nothing about the patient's health.
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default="pending", max_length=16)  # pending, in_flight, sent, failed, dead, cancelled
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SelfReportSettings(SQLModel, table=True):
    """A hospital's self-report settings; a hospital without a row gets the defaults (invitations.DEFAULTS)."""

    __tablename__ = "self_report_settings"

    tenant_id: str = Field(foreign_key="tenants.id", primary_key=True, max_length=64)
    # Shown to a patient whose answer needs help now (PHQ-9 item 9 above 0, a positive C-SSRS screen).
    crisis_text: str | None = Field(default=None, max_length=2000)
    # Only when the hospital says so do the pages tell a patient that someone from the care team will call.
    staff_will_call: bool = False
    link_valid_days: int = 7
    updated_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
