"""The FHIR projection: every resource we publish, each version kept, with search tokens.

It is derived from the domain records on every write (same transaction) and can be rebuilt from them; the
facade reads and searches it so derived resources (vital-sign Observations, CarePlans with their computed
status) have ids, versions and history like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from service.db.types import UtcDateTime


class FhirResourceVersion(SQLModel, table=True):
    __tablename__ = "fhir_resources"
    __table_args__ = (
        Index("ix_fhir_resources_search", "tenant_id", "resource_type", "is_current", "patient_id", "clinical_date"),
        Index("ix_fhir_resources_updated", "tenant_id", "resource_type", "is_current", "last_updated"),
        Index("ix_fhir_resources_record", "tenant_id", "record_kind", "record_id"),
    )

    tenant_id: str = Field(primary_key=True, max_length=64)
    resource_type: str = Field(primary_key=True, max_length=48)
    resource_id: str = Field(primary_key=True, max_length=64)
    version_id: int = Field(primary_key=True)
    is_current: bool
    deleted: bool = False
    last_updated: datetime = Field(sa_type=UtcDateTime)
    patient_id: str | None = Field(default=None, max_length=36)
    record_kind: str = Field(max_length=48)
    record_id: str = Field(max_length=36)
    clinical_date: datetime | None = Field(default=None, sa_type=UtcDateTime)
    status: str | None = Field(default=None, max_length=32)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class FhirSearchToken(SQLModel, table=True):
    """Token search parameters of the current version: code, category, identifier."""

    __tablename__ = "fhir_search_tokens"
    __table_args__ = (
        Index("ix_fhir_search_tokens_lookup", "tenant_id", "resource_type", "param", "value"),
        Index("ix_fhir_search_tokens_resource", "tenant_id", "resource_type", "resource_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64)
    resource_type: str = Field(max_length=48)
    resource_id: str = Field(max_length=64)
    param: str = Field(max_length=32)
    system: str | None = Field(default=None, max_length=255)
    value: str = Field(max_length=255)
