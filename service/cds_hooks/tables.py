"""What the CDS Hooks service stores: the EHRs registered to call it, and the JWT ids it has seen (replays)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime


class CdsClient(SQLModel, table=True):
    """An EHR allowed to call the CDS services for one hospital: its JWT issuer and the keys it signs with (a JWKS
    URL fetched and cached, or a JWKS given inline), and the EHR sync target it is (the fhirServer it may name and
    whose ids its patientId is)."""

    __tablename__ = "cds_clients"

    # The JWT `iss`: one issuer is one EHR of one hospital, so the issuer alone finds the tenant.
    issuer: str = Field(primary_key=True, max_length=1024)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64, index=True)
    jwks_url: str | None = Field(default=None, max_length=1024)
    jwks: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    sync_target_id: str | None = Field(default=None, foreign_key="sync_targets.id", max_length=36)
    registered_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)


class CdsJwtSeen(SQLModel, table=True):
    """A JWT id an issuer used, kept until the JWT expires: the same `jti` again is a replay."""

    __tablename__ = "cds_jwt_seen"
    __table_args__ = (Index("ix_cds_jwt_seen_expires_at", "expires_at"),)

    issuer: str = Field(primary_key=True, max_length=1024)
    jti: str = Field(primary_key=True, max_length=255)
    expires_at: datetime = Field(sa_type=UtcDateTime)
