"""The audit trail: who touched which patient's data, how, and with what outcome.

Rows hold ids and codes only, never clinical content, and no API route updates or deletes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime
from service.records.base import new_id

AuditAction = Literal["create", "read", "list", "update", "delete"]
AuditOutcome = Literal["success", "failure"]


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_occurred", "tenant_id", "occurred_at"),
        Index("ix_audit_events_tenant_patient", "tenant_id", "patient_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64)
    occurred_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    actor: str = Field(max_length=255)
    actor_role: str = Field(max_length=32)
    action: str = Field(max_length=16)
    record_kind: str = Field(max_length=48)
    record_id: str | None = Field(default=None, max_length=64)
    patient_id: str | None = Field(default=None, max_length=64)
    outcome: str = Field(max_length=16)
    status_code: int
    request_id: str = Field(max_length=64)
    # Why, where it is not plain treatment: "BTG" (v3-ActReason break the glass) for access under a grant.
    purpose: str | None = Field(default=None, max_length=16)
