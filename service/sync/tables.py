"""Tables of the delivery machinery: what the EHR calls our resources, the per-request log, pull cursors and the
quarantine of pulled resources Tandem refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db.types import UtcDateTime


class RemoteResource(SQLModel, table=True):
    """One resource we wrote (or found) at a target: its EHR id and version, per (target, record, role).

    `local_id` is the id our mapping gives the resource, so references between our resources can be rewritten
    to the EHR's ids ("Patient/<our id>" -> "Patient/<their id>").
    """

    __tablename__ = "sync_remote_resources"
    __table_args__ = (
        UniqueConstraint("target_id", "record_kind", "record_id", "role"),
        Index("ix_sync_remote_resources_local", "target_id", "resource_type", "local_id"),
        Index("ix_sync_remote_resources_remote", "target_id", "resource_type", "remote_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    target_id: str = Field(foreign_key="sync_targets.id", max_length=36)
    record_kind: str = Field(max_length=48)
    record_id: str = Field(max_length=36)
    role: str = Field(max_length=128)  # "message/<reason code>/<occurrence id>": an urgent finding
    resource_type: str = Field(max_length=64)
    local_id: str = Field(max_length=64)
    remote_id: str = Field(max_length=64)
    remote_version: str | None = Field(default=None, max_length=64)
    record_version: int
    updated_at: datetime = Field(sa_type=UtcDateTime)


class SyncAttempt(SQLModel, table=True):
    """One HTTP request made for an outbox row (no PHI: URLs carry ids and our identifiers only)."""

    __tablename__ = "sync_attempts"
    __table_args__ = (Index("ix_sync_attempts_outbox", "outbox_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="sync_outbox.id")
    correlation_id: str = Field(max_length=36)
    attempt: int
    method: str = Field(max_length=8)
    url: str = Field(max_length=2048)
    status_code: int | None = None
    outcome: str = Field(max_length=32)
    duration_ms: int
    at: datetime = Field(sa_type=UtcDateTime)


class PullCursor(SQLModel, table=True):
    """Where the last pull of one resource type from one target stopped (the highest meta.lastUpdated seen)."""

    __tablename__ = "sync_pull_cursors"

    target_id: str = Field(foreign_key="sync_targets.id", primary_key=True, max_length=36)
    resource_type: str = Field(primary_key=True, max_length=64)
    last_updated: str = Field(max_length=64)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class QuarantinedResource(SQLModel, table=True):
    """A resource a pull (or $export) took from a target and Tandem refused: kept with the refusal and the raw
    resource, so nothing refused is lost when the cursor moves past it. Retried after a change of the target's
    code map and on demand; `state` is "refused" until a retry takes it ("accepted").
    """

    __tablename__ = "sync_quarantine"
    __table_args__ = (
        UniqueConstraint("target_id", "resource_type", "remote_id"),
        Index("ix_sync_quarantine_state", "tenant_id", "target_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    target_id: str = Field(foreign_key="sync_targets.id", max_length=36)
    resource_type: str = Field(max_length=64)
    remote_id: str = Field(max_length=64)
    # Where and why ("Observation.code: no PHQ-9 item code …"), as the intake's refusal named it.
    element: str = Field(max_length=512)
    reason: str = Field(max_length=2000)
    resource: dict[str, Any] = Field(sa_type=JSON)
    state: str = Field(max_length=16)  # refused | accepted
    attempts: int = 1
    first_seen: datetime = Field(sa_type=UtcDateTime)
    last_seen: datetime = Field(sa_type=UtcDateTime)
    record_id: str | None = Field(default=None, max_length=36)  # the record a retry made
    # The target's code map when it was last refused: a target whose map has changed since retries it.
    code_map_digest: str = Field(max_length=64)


class WorkerHeartbeat(SQLModel, table=True):
    """One delivery worker process as it last said it was alive (service/sync/heartbeat.py). A worker that
    stopped cleanly says so (`stopped_at`); one that was killed just stops beating, and reads as dead once its
    last beat is older than TANDEM_SYNC_WORKER_DEAD_AFTER_SECONDS."""

    __tablename__ = "sync_workers"
    __table_args__ = (Index("ix_sync_workers_last_beat", "last_beat_at"),)

    id: str = Field(primary_key=True, max_length=128)  # the worker id its claims carry (claimed_by)
    host: str = Field(max_length=255)
    pid: int
    # Only this tenant's rows (`tandem sync worker --tenant`); None: every tenant's.
    tenant_id: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(sa_type=UtcDateTime)
    last_beat_at: datetime = Field(sa_type=UtcDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    rows_claimed: int = 0
