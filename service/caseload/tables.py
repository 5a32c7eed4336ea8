"""Stored plan statuses (one row per enrollment, replaced on every recompute), acknowledgements and protocols."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime
from service.records.base import new_id

# Sort order of the caseload: who needs a call first.
URGENCY = {"at_risk": 0, "needs_attention": 1, "on_track": 2, "on_hold": 3, "completed": 4, "discontinued": 5}


class PlanStatusRow(SQLModel, table=True):
    """A read model: everything the caseload filters and sorts on is a column, the full status is `detail`."""

    __tablename__ = "plan_statuses"
    __table_args__ = (
        Index("ix_plan_statuses_caseload", "tenant_id", "urgency", "last_contact_at"),
        Index("ix_plan_statuses_tenant_status", "tenant_id", "status"),
        Index("ix_plan_statuses_tenant_coordinator", "tenant_id", "coordinator_id"),
        Index("ix_plan_statuses_tenant_patient", "tenant_id", "patient_id"),
        Index("ix_plan_statuses_recompute", "next_recompute_at"),
    )

    tenant_id: str = Field(primary_key=True, max_length=64)
    enrollment_id: str = Field(primary_key=True, max_length=36)
    patient_id: str = Field(max_length=36)
    protocol_id: str = Field(max_length=64)
    protocol_version: str = Field(max_length=32)
    coordinator_id: str | None = Field(default=None, max_length=36)
    start_date: date
    status: str = Field(max_length=24)
    phase: str = Field(max_length=24)
    urgency: int
    # ",code,code," so one flag can be filtered with a portable LIKE.
    open_flags: str = Field(default=",", max_length=2000)
    open_urgent: int = 0
    open_warnings: int = 0
    primary_instrument: str = Field(max_length=32)
    baseline_score: float | None = None
    latest_score: float | None = None
    change_percent: float | None = None
    score_trend: list[float] = Field(default_factory=list, sa_type=JSON)
    last_contact_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    next_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    next_due_kind: str | None = Field(default=None, max_length=24)
    overdue: bool = False
    next_recompute_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    computed_at: datetime = Field(sa_type=UtcDateTime)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class FlagAcknowledgement(SQLModel, table=True):
    """A clinician has seen one occurrence of a flag; a new occurrence opens a new flag."""

    __tablename__ = "flag_acknowledgements"
    __table_args__ = (
        UniqueConstraint("tenant_id", "enrollment_id", "flag_code", "occurrence_id"),
        Index("ix_flag_acknowledgements_patient", "tenant_id", "patient_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    enrollment_id: str = Field(max_length=36)
    patient_id: str = Field(max_length=36)
    flag_code: str = Field(max_length=64)
    occurrence_id: str = Field(max_length=128)
    acknowledged_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    acknowledged_by: str = Field(max_length=255)
    note: str = Field(max_length=4000)


class TenantProtocol(SQLModel, table=True):
    """A protocol a tenant added; versions are kept, an enrollment keeps the version it started with."""

    __tablename__ = "protocols"
    __table_args__ = (UniqueConstraint("tenant_id", "protocol_id", "version"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    protocol_id: str = Field(max_length=64)
    version: str = Field(max_length=32)
    definition: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    created_by: str = Field(max_length=255)
