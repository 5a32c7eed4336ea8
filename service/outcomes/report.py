"""The programme outcomes report: what the API returns and the page draws, from per-patient outcomes alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime

from pydantic import BaseModel, Field

from .cohort import Cohort, cohort
from .course import PatientOutcome
from .durability import DurabilityReport, durability
from .response import MILESTONES
from .suppression import Cell, Rate, cell, partition, rate

CAVEATS = (
    "These are observational data from this hospital's own patients, not a trial: patients who keep up with CBT "
    "may differ in other ways from those who do not, so a difference between the groups does not show that CBT "
    "caused it.",
    "Small numbers are suppressed: any count of fewer than {min_cell} patients is shown as \u201c< {min_cell}\u201d, "
    "and so is anything it could be worked out from, so that no patient can be recognised.",
    "A count shown as \u201chidden\u201d is not small itself: it is withheld because, with the total, it would "
    "give away a small count beside it.",
    "A patient without the measurement at a milestone is counted as missing and against the rate; the curves end "
    "where fewer than {min_cell} patients were still followed.",
)


class Filters(BaseModel):
    period_start: date
    period_end: date
    protocol: str | None = None
    site: str | None = None
    therapist: str | None = None


class MilestoneReport(BaseModel):
    key: str
    label: str
    due: Cell = Field(description="Patients whose milestone fell due in the period (the denominator)")
    measured: Cell
    missing: Cell
    response: Rate
    remission: Rate


class Completeness(BaseModel):
    patients: Cell
    due: int | None = Field(description="Measurements due; null when suppressed")
    received: int | None
    share: float | None
    suppressed: bool


class SafetyKind(BaseModel):
    code: str
    patients: Cell = Field(description="Patients with at least one such event")
    events: int | None
    per_100_sessions: float | None


class Safety(BaseModel):
    sessions: int = Field(description="Ketamine and esketamine sessions given to the patients reported")
    kinds: list[SafetyKind]


class RemsTimeliness(BaseModel):
    patients: Cell = Field(description="Patients with esketamine sessions")
    sessions: int | None
    on_time: int | None
    late: int | None
    overdue: int | None
    pending: int | None
    on_time_share: float | None
    suppressed: bool


class OutcomesReport(BaseModel):
    filters: Filters
    as_of: datetime
    min_cell: int
    cohort: Cohort
    milestones: list[MilestoneReport]
    durability: DurabilityReport
    completeness: Completeness
    safety: Safety
    rems: RemsTimeliness
    caveats: list[str]


def build_report(
    patients: Sequence[PatientOutcome], filters: Filters, as_of: datetime, *, min_cell: int, adherent_share: float
) -> OutcomesReport:
    return OutcomesReport(
        filters=filters,
        as_of=as_of,
        min_cell=min_cell,
        cohort=cohort(patients, min_cell),
        milestones=[_milestone(patients, key, label, min_cell) for key, label in MILESTONES.items()],
        durability=durability(patients, min_cell, adherent_share),
        completeness=_completeness(patients, min_cell),
        safety=_safety(patients, min_cell),
        rems=_rems(patients, min_cell),
        caveats=[c.format(min_cell=min_cell) for c in CAVEATS],
    )


def _milestone(patients: Sequence[PatientOutcome], key: str, label: str, min_cell: int) -> MilestoneReport:
    found = [p.milestones[key] for p in patients if p.milestones[key].state != "not_due"]
    measured = [m for m in found if m.state == "measured"]
    responded = sum(m.responded for m in measured)
    remitted = sum(m.remitted for m in measured)
    due, parts = partition(len(found), {"measured": len(measured), "missing": len(found) - len(measured)}, min_cell)
    _, resp = partition(len(found), {"yes": responded, "no": len(found) - responded}, min_cell)
    _, remi = partition(len(found), {"yes": remitted, "no": len(found) - remitted}, min_cell)
    return MilestoneReport(
        key=key,
        label=label,
        due=due,
        measured=parts["measured"],
        missing=parts["missing"],
        response=rate(resp["yes"], due, responded, len(found), min_cell),
        remission=rate(remi["yes"], due, remitted, len(found), min_cell),
    )


def _completeness(patients: Sequence[PatientOutcome], min_cell: int) -> Completeness:
    counted = [p for p in patients if p.monitoring.measurements_due > 0]
    due = sum(p.monitoring.measurements_due for p in counted)
    received = sum(p.monitoring.measurements_received for p in counted)
    hidden = len(counted) < min_cell
    return Completeness(
        patients=cell(len(counted), min_cell, hide=hidden and bool(counted)),
        due=None if hidden else due,
        received=None if hidden else received,
        share=None if hidden or not due else received / due,
        suppressed=hidden,
    )


def _safety(patients: Sequence[PatientOutcome], min_cell: int) -> Safety:
    sessions = sum(p.monitoring.sessions_given for p in patients)
    events: Counter[str] = Counter()
    people: Counter[str] = Counter()
    for p in patients:
        events.update(p.monitoring.safety_events)
        people.update(set(p.monitoring.safety_events))
    kinds = []
    for code in sorted(events):
        hidden = people[code] < min_cell
        kinds.append(
            SafetyKind(
                code=code,
                patients=cell(people[code], min_cell),
                events=None if hidden else events[code],
                per_100_sessions=None if hidden or not sessions else round(100 * events[code] / sessions, 2),
            )
        )
    return Safety(sessions=sessions, kinds=kinds)


def _rems(patients: Sequence[PatientOutcome], min_cell: int) -> RemsTimeliness:
    with_rems = [p for p in patients if sum(p.monitoring.rems.values())]
    totals: Counter[str] = Counter()
    for p in with_rems:
        totals.update(p.monitoring.rems)
    sessions = sum(totals.values())
    hidden = len(with_rems) < min_cell

    def shown(key: str) -> int | None:
        return None if hidden else totals.get(key, 0)

    settled = sessions - totals.get("pending", 0)
    return RemsTimeliness(
        patients=cell(len(with_rems), min_cell),
        sessions=None if hidden else sessions,
        on_time=shown("on_time"),
        late=shown("late"),
        overdue=shown("overdue"),
        pending=shown("pending"),
        on_time_share=None if hidden or not settled else totals.get("on_time", 0) / settled,
        suppressed=hidden,
    )
