"""A tenant is one hospital or site; every other row belongs to exactly one."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
