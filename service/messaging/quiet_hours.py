"""Quiet hours: a message due between, say, 21:00 and 08:00 in the patient's own time zone waits until 08:00 there.
Pure: the window and the zone are given."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_window(text: str) -> tuple[time, time] | None:
    """'21:00-08:00' -> (21:00, 08:00); '' -> None (no quiet hours). The settings checked the form."""
    if not text:
        return None
    start, end = text.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def quiet_until(now: datetime, zone: str, window: tuple[time, time] | None) -> datetime | None:
    """The instant the quiet hours end when `now` falls in them, else None. A window may cross midnight
    (21:00-08:00) or not (13:00-14:00); equal ends mean none."""
    if window is None or window[0] == window[1]:
        return None
    start, end = window
    local = now.astimezone(ZoneInfo(zone))
    clock = local.time().replace(tzinfo=None)
    crosses_midnight = start > end
    inside = (clock >= start or clock < end) if crosses_midnight else start <= clock < end
    if not inside:
        return None
    day = local.date()
    if crosses_midnight and clock >= start:
        day += timedelta(days=1)
    # Wall-clock end in that zone (a DST gap shifts it by the zone's rules, which zoneinfo applies).
    return datetime.combine(day, end, tzinfo=ZoneInfo(zone)).astimezone(now.tzinfo)
