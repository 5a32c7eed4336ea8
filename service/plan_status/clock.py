"""The as-of instant, and a record of every future instant a rule compared it with.

Every time-dependent decision goes through `reached`, so the earliest future instant it saw is exactly
when the status could next change by the passage of time alone (the sweep's `next_recompute_at`).
"""

from __future__ import annotations

from datetime import datetime


class Clock:
    def __init__(self, as_of: datetime) -> None:
        if as_of.tzinfo is None:
            raise ValueError("as_of must carry a timezone")
        self.as_of = as_of
        self._future: set[datetime] = set()

    def reached(self, instant: datetime) -> bool:
        """Whether `instant` is at or before as_of; a later instant is remembered as a possible change."""
        if instant <= self.as_of:
            return True
        self._future.add(instant)
        return False

    def next_change(self) -> datetime | None:
        return min(self._future, default=None)
