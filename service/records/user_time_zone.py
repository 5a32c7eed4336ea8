"""A user's own time zone, overriding the hospital's on the pages (a coordinator working from another zone).

Users are the tokens' subjects, per tenant; nothing else is kept about them.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from service.clock import now_utc
from service.db.types import UtcDateTime


class UserTimeZone(SQLModel, table=True):
    __tablename__ = "user_time_zones"

    tenant_id: str = Field(primary_key=True, foreign_key="tenants.id", max_length=64)
    subject: str = Field(primary_key=True, max_length=255)
    time_zone: str = Field(max_length=64)  # an IANA name, checked when set (tenants.checked_zone)
    updated_at: datetime = Field(default_factory=now_utc, sa_type=UtcDateTime)
