"""Plain-English pieces for coordinator messages: readable dates, numbers and session names, and the words for a
plan's status, phase and what is due (the pages and the EHR's CDS Hooks card say them alike).

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


STATUS_WORDS: dict[str, str] = {
    "at_risk": "At risk",
    "needs_attention": "Needs attention",
    "on_track": "On track",
    "on_hold": "On hold",
    "completed": "Completed",
    "discontinued": "Discontinued",
}
PHASE_WORDS: dict[str, str] = {
    "baseline": "Baseline",
    "induction": "Induction",
    "consolidation": "Consolidation",
    "maintenance": "Maintenance",
}
DUE_WORDS: dict[str, str] = {
    "ketamine_session": "Ketamine session",
    "cbt_session": "CBT session",
    "measurement": "Measurement",
    "rems_form": "REMS form",
}


def status_words(code: str) -> str:
    return STATUS_WORDS.get(code, code.replace("_", " ").capitalize())


def phase_words(code: str) -> str:
    return PHASE_WORDS.get(code, code.capitalize())


def due_words(code: str) -> str:
    return DUE_WORDS.get(code, code.replace("_", " ").capitalize())
