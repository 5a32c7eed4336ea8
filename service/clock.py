"""The service's notion of now, in one place so time-dependent rules can be tested with a fixed clock."""

from __future__ import annotations

from datetime import UTC, date, datetime


def now_utc() -> datetime:
    return datetime.now(UTC)


def today_utc() -> date:
    return now_utc().date()
