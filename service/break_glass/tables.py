"""A clinician's time-boxed access to one restricted patient, with the reason given."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from service.db.types import UtcDateTime
from service.records.base import new_id


class BreakGlassGrant(SQLModel, table=True):
    __tablename__ = "break_glass_grants"
    __table_args__ = (Index("ix_break_glass_grants_open", "tenant_id", "subject", "ended_at", "expires_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64)
    patient_id: str = Field(max_length=36)
    subject: str = Field(max_length=255)
    reason: str = Field(max_length=1000)
    started_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    # Set when the clinician ends it early or, after expiry, when the service closes it (and audits the end).
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    end_reason: str | None = Field(default=None, max_length=16)  # ended | expired
