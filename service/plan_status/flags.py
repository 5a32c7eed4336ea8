"""Flag occurrences and how acknowledgements close them.

An acknowledgement names a flag code and the occurrence record; it closes that occurrence only, so the
same problem on a new record (a new questionnaire, a new session) opens a new flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from .inputs import Acknowledgement
from .status import Reason, Severity
from .wording import day

_RANK: dict[str, int] = {"urgent": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    occurrence_id: str
    since: datetime
    other_record_ids: tuple[str, ...] = ()
    # What the clinic does next, for a finding that stays open until acknowledged; `message` then says only what
    # happened, so that once closed the reason no longer tells anyone to "call the patient today".
    next_step: str | None = None

    @property
    def record_ids(self) -> tuple[str, ...]:
        rest = sorted(set(self.other_record_ids) - {self.occurrence_id})
        return (self.occurrence_id, *rest)


def to_reasons(
    findings: Iterable[Finding], acknowledgements: Iterable[Acknowledgement], tz: tzinfo
) -> tuple[Reason, ...]:
    latest_ack: dict[tuple[str, str], Acknowledgement] = {}
    # Several acknowledgements of one occurrence: show the latest (ties broken by content for determinism).
    for ack in sorted(acknowledgements, key=lambda a: (a.acknowledged_at, a.by, a.note or "")):
        latest_ack[(ack.flag_code, ack.record_id)] = ack
    unique = {(f.code, f.occurrence_id): f for f in findings}
    reasons = []
    for finding in unique.values():
        found = latest_ack.get((finding.code, finding.occurrence_id))
        reasons.append(
            Reason(
                code=finding.code,
                severity=finding.severity,
                message=_message(finding, found, tz),
                next_step=finding.next_step if found is None else None,
                what_happened=finding.message.removesuffix("."),
                occurrence_id=finding.occurrence_id,
                record_ids=finding.record_ids,
                since=finding.since,
                needs_acknowledgement=finding.severity == "urgent",
                acknowledgement=found,
                open=found is None,
            )
        )
    reasons.sort(key=lambda r: (not r.open, _RANK[r.severity], r.since, r.code, r.occurrence_id))
    return tuple(reasons)


def _message(finding: Finding, closed_by: Acknowledgement | None, tz: tzinfo) -> str:
    if closed_by is None:
        return finding.message if finding.next_step is None else f"{finding.message} — {finding.next_step}."
    closed = f"Closed: acknowledged by {closed_by.by} on {day(closed_by.acknowledged_at, tz)}."
    # A finding with its own next step drops it once closed; any other keeps its sentence, marked closed.
    what = finding.message if finding.next_step is None else f"{finding.message}."
    return f"{what} {closed}"
