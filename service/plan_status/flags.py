"""Flag occurrences and how acknowledgements close them.

An acknowledgement names a flag code and the occurrence record; it closes that occurrence only, so the
same problem on a new record (a new questionnaire, a new session) opens a new flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .inputs import Acknowledgement
from .status import Reason, Severity

_RANK: dict[str, int] = {"urgent": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    occurrence_id: str
    since: datetime
    other_record_ids: tuple[str, ...] = ()

    @property
    def record_ids(self) -> tuple[str, ...]:
        rest = sorted(set(self.other_record_ids) - {self.occurrence_id})
        return (self.occurrence_id, *rest)


def to_reasons(findings: Iterable[Finding], acknowledgements: Iterable[Acknowledgement]) -> tuple[Reason, ...]:
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
                message=finding.message,
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
