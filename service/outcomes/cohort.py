"""Enrolled, active, on hold, completed and discontinued (with reasons), suppressed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

from .course import PatientOutcome
from .suppression import Cell, partition

STATES = ("active", "on-hold", "completed", "discontinued")
OTHER_REASONS = "other reasons (each fewer than the cell size)"


class ReasonCount(BaseModel):
    reason: str
    patients: Cell


class Cohort(BaseModel):
    enrolled: Cell
    by_state: dict[str, Cell]
    discontinued_reasons: list[ReasonCount]


def cohort(patients: Sequence[PatientOutcome], min_cell: int) -> Cohort:
    states: Counter[str] = Counter(p.enrollment.status for p in patients)
    enrolled, by_state = partition(len(patients), {s: states.get(s, 0) for s in STATES}, min_cell)
    # Reasons are the clinic's free text: one given for fewer than min_cell patients is folded into "other", so a
    # rare reason never names anyone.
    reasons = Counter(
        (p.enrollment.status_reason or "not stated").strip() for p in patients if p.enrollment.status == "discontinued"
    )
    grouped: Counter[str] = Counter()
    for reason, n in reasons.items():
        grouped[reason if n >= min_cell else OTHER_REASONS] += n
    _, cells = partition(states.get("discontinued", 0), dict(grouped), min_cell)
    if by_state["discontinued"].suppressed:
        cells = {k: Cell(value=None, suppressed=True) for k in cells}
    ordered = sorted(grouped, key=lambda r: (r == OTHER_REASONS, -grouped[r], r))
    return Cohort(
        enrolled=enrolled,
        by_state=by_state,
        discontinued_reasons=[ReasonCount(reason=r, patients=cells[r]) for r in ordered],
    )
