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
    # The hospital's IANA zone: it places "today" and the day of a dose in the plan status, and every time on the
    # pages is shown in it (times in the APIs stay instants with their offset).
    time_zone: str = Field(default="UTC", max_length=64)
    created_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
