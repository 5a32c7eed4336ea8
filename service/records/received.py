"""Provenance: the resource a sender sent for a record, kept as sent, so nothing sent is silently lost.

Written in one place, the store's create and update (service/record_store/store.py), for every record an intake
made (service/intake: the facade, Bundles, import, fhir+json bodies and the pull). The intake puts what it read on
the request context (`Received`); the store keeps it with the record it wrote. The size is bounded by the body
and line limits every path already has. The JSON holds patient data: it is never logged, and reading it back
(GET /api/v1/{kind}/{id}/received) is audited like any read of the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Index
from sqlmodel import Field as SqlField
from sqlmodel import SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime


@dataclass(frozen=True)
class Received:
    """What an intake read: the resource as sent, whose namespace its ids are in, and the elements not used."""

    resource_type: str
    resource: dict[str, Any]
    source_system: str | None
    unused: tuple[str, ...]


class ReceivedResource(SQLModel, table=True):
    __tablename__ = "received_resources"
    __table_args__ = (Index("ix_received_resources_record", "tenant_id", "record_kind", "record_id", "id"),)

    id: int | None = SqlField(default=None, primary_key=True)
    tenant_id: str = SqlField(foreign_key="tenants.id", max_length=64)
    record_kind: str = SqlField(max_length=48)
    record_id: str = SqlField(max_length=36)
    resource_type: str = SqlField(max_length=64)
    # The sender's namespace for its ids (a pulled target's base URL); None for a resource sent to us.
    source_system: str | None = SqlField(default=None, max_length=1024)
    sender: str = SqlField(max_length=255)  # the caller's subject (an EHR client, sync:<target>, tandem-import)
    request_id: str = SqlField(max_length=128)
    received_at: datetime = SqlField(default_factory=now_utc, sa_type=UtcDateTime)
    resource: dict[str, Any] = SqlField(sa_type=JSON)
    unused: list[str] = SqlField(default_factory=list, sa_type=JSON)


class ReceivedResourcePublic(BaseModel):
    resource_type: str
    source_system: str | None
    sender: str = Field(description="Who sent it: the token's subject, sync:<target id>, or tandem-import")
    request_id: str
    received_at: datetime
    unused: list[str] = Field(description="Elements of the resource Tandem did not use (FHIRPath)")
    resource: dict[str, Any] = Field(description="The resource exactly as it was sent")
