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
    """Token search parameters of the current, undeleted version: code, category, identifier.

    Each row also carries copies of its resource's patient, clinical date and last update (all tokens of a
    resource are rewritten whenever its current version changes, and a deleted version has none), so a search
    on one token parameter is an ordered range of one index, stopping after the page, joined to the resources
    by primary key for the page's bodies only (search.run_search). The trailing resource_id is the sort's tie
    break."""

    __tablename__ = "fhir_search_tokens"
    __table_args__ = (
        Index(
            "ix_fhir_search_tokens_date", "tenant_id", "resource_type", "param", "value", "clinical_date", "resource_id"
        ),
        Index(
            "ix_fhir_search_tokens_updated",
            "tenant_id",
            "resource_type",
            "param",
            "value",
            "last_updated",
            "resource_id",
        ),
        Index("ix_fhir_search_tokens_resource", "tenant_id", "resource_type", "resource_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64)
    resource_type: str = Field(max_length=48)
    resource_id: str = Field(max_length=64)
    param: str = Field(max_length=32)
    system: str | None = Field(default=None, max_length=255)
    value: str = Field(max_length=255)
    # Copies of the resource's current version (FhirResourceVersion), for the one-index search.
    patient_id: str | None = Field(default=None, max_length=36)
    clinical_date: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_updated: datetime | None = Field(default=None, sa_type=UtcDateTime)
