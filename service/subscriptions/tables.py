"""The subscriptions and their notifications (the queue the sync worker drains; each event row keeps its number)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db.types import UtcDateTime
from service.records import tenant as _tenant_table  # noqa: F401 - FK target

SubscriptionStatus = str  # requested | active | error | off (R4 subscription-status)
NotificationType = str  # handshake | heartbeat | event-notification


class Subscription(SQLModel, table=True):
    """A backport Subscription as it was accepted, with the counter its events are numbered by."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_tenant_topic", "tenant_id", "topic", "status"),)

    id: str = Field(primary_key=True, max_length=36)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    status: str = Field(max_length=16)
    topic: str = Field(max_length=255)
    patient_filter: str | None = Field(default=None, max_length=64)  # a Tandem patient id, or every patient
    endpoint: str = Field(max_length=2048)
    headers: list[str] = Field(default_factory=list, sa_type=JSON)
    content: str = Field(max_length=16)  # empty | id-only | full-resource
    heartbeat_seconds: int | None = None
    timeout_seconds: int | None = None
    max_count: int | None = None
    end: datetime | None = Field(default=None, sa_type=UtcDateTime)
    events_since_start: int = 0
    error: str | None = Field(default=None, max_length=1024)
    resource: dict[str, Any] = Field(sa_type=JSON)  # as accepted, for read-back
    fhir_base: str = Field(max_length=2048)  # the facade's base as the subscriber called it: notifications name it
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    last_sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SubscriptionNotification(SQLModel, table=True):
    """One notification to send (handshake, heartbeat) or one event (numbered, kept for $events after delivery).

    Delivery states follow the outbox's: pending, in_flight, sent, failed (retried with backoff), dead."""

    __tablename__ = "subscription_notifications"
    __table_args__ = (
        Index("ix_subscription_notifications_due", "status", "next_attempt_at"),
        UniqueConstraint("subscription_id", "event_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64)
    subscription_id: str = Field(foreign_key="subscriptions.id", max_length=36, index=True)
    type: str = Field(max_length=24)
    event_number: int | None = None
    focus_type: str | None = Field(default=None, max_length=64)
    focus_id: str | None = Field(default=None, max_length=64)
    focus: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # the resource as of the event
    patient_id: str | None = Field(default=None, max_length=36)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UtcDateTime)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=1024)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
