"""What SMART App Launch stores: the EHRs registered as authorization servers, and each launch (single use)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime
from service.records.base import new_id


class SmartRegistration(SQLModel, table=True):
    """A tenant's EHR as a SMART authorization server: Tandem is registered there as an app (client_id)."""

    __tablename__ = "smart_registrations"
    __table_args__ = (UniqueConstraint("iss"),)  # a launch names only its iss: one tenant per EHR FHIR base

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=64, index=True)
    iss: str = Field(max_length=1024)  # the EHR's FHIR base URL, normalised without a trailing slash
    client_id: str = Field(max_length=255)
    # Confidential client: the NAME of the environment variable holding the secret (TANDEM_SMART_CLIENT_SECRET_*
    # only, never one of the service's own); None: a public client (PKCE alone).
    client_secret_env: str | None = Field(default=None, max_length=128)
    redirect_uri: str = Field(max_length=1024)
    scope: str = Field(max_length=1024)
    frame_origins: list[str] = Field(default_factory=list, sa_type=JSON)
    # [{"when": "Practitioner" | "scope:<scope>", "role": "clinician" | "coordinator"}], scope rules first
    role_rules: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    # The tenant's EHR sync target at the same FHIR server: the launch patient is found by the id it holds there.
    target_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)


class SmartLaunch(SQLModel, table=True):
    """One launch: its state (kept as a hash) and PKCE verifier, used once within minutes; then who it signed in."""

    __tablename__ = "smart_launches"
    __table_args__ = (UniqueConstraint("state_hash"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=64, index=True)
    registration_id: str = Field(max_length=36)
    state_hash: str = Field(max_length=64)
    code_verifier: str = Field(max_length=128)
    launch: str | None = Field(default=None, max_length=4096)  # the EHR's launch parameter; None: standalone
    token_endpoint: str = Field(max_length=1024)
    issuer: str | None = Field(default=None, max_length=1024)  # the id_token's issuer, from discovery
    jwks_uri: str | None = Field(default=None, max_length=1024)
    created_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Filled when the callback signed someone in (or was refused after the EHR said who it was).
    fhir_user: str | None = Field(default=None, max_length=1024)
    patient_id: str | None = Field(default=None, max_length=36)
    outcome: str | None = Field(default=None, max_length=64)
