"""Retry delays: exponential backoff with full jitter, never shorter than what the server asked for."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

BASE_SECONDS = 2.0
CAP_SECONDS = 900.0
# A server cannot park a message for longer than this with Retry-After.
MAX_RETRY_AFTER_SECONDS = 3600.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def retry_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    rng: random.Random | None = None,
) -> float:
    """Delay before attempt `attempt + 1` (attempt counts from 1): uniform in [0, min(cap, base * 2**(attempt-1))],
    at least `retry_after`."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    jittered = (rng or random).uniform(base / 2 if ceiling >= base else 0.0, ceiling)
    return max(jittered, retry_after or 0.0)
