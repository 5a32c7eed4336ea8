"""Plain-English pieces for coordinator messages: readable dates, numbers and session names.

Months are spelled from a fixed table, not strftime, so messages never depend on the server locale.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day(instant: datetime, tz: tzinfo) -> str:
    local = instant.astimezone(tz)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def number(value: float) -> str:
    return f"{value:g}"


def session_noun(drug: str) -> str:
    return "infusion" if drug == "ketamine" else "esketamine session"


def days(value: float) -> str:
    return f"{value:g} day" if value == 1 else f"{value:g} days"
