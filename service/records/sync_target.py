"""The EHR target table: where a tenant's records go and come from (its API shapes and checks: service/sync/targets.py).

A table beside the records so the outbox, which every write fills in its transaction, can read the enabled targets
from below the store.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field as SqlField

from service.records.base import TenantRecord


class SyncTarget(TenantRecord, table=True):
    __tablename__ = "sync_targets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_system", "source_id"),
        UniqueConstraint("tenant_id", "name"),
    )

    name: str = SqlField(max_length=255)
    base_url: str = SqlField(max_length=1024)
    auth: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)
    push: list[str] = SqlField(default_factory=list, sa_type=JSON)
    pull: list[str] = SqlField(default_factory=list, sa_type=JSON)
    mrn_system: str | None = SqlField(default=None, max_length=255)
    requests_per_second: float = 5.0
    batch_size: int = 20
    enabled: bool = True
    code_map: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)
    # How a pulled referral chooses its protocol (service/sync/targets.py ReferralRuleFields).
    referrals: dict[str, Any] = SqlField(default_factory=dict, sa_type=JSON)
    # The bearer token, sealed (never returned), and the origin it was written for (shown to admins).
    credential: str | None = SqlField(default=None, max_length=16384)
    credential_origin: str | None = SqlField(default=None, max_length=1024)
