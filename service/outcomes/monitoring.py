"""Per patient: measurement completeness, safety events per session, and REMS form timeliness.

- Measurements due: the baseline, then one primary score per `during_cbt_every_days` (weekly) over the CBT course
  (`cbt_sessions` x `cbt_cadence_days` from the first session), each period counted once it has ended by the
  period's end and before the enrolment ended; received: a period with at least one score.
- Safety events: the plan-status engine's urgent safety findings (plan_status.safety), by reason code.
- REMS (esketamine): each session given, against the protocol's `rems_form_days`: on time, late, overdue (no form
  and past due) or pending (no form, not yet due).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from service.plan_status.safety import all_safety_findings
from service.plan_status.timeline import Timeline


@dataclass(frozen=True)
class Monitoring:
    measurements_due: int = 0
    measurements_received: int = 0
    sessions_given: int = 0
    safety_events: Counter[str] = field(default_factory=Counter)
    rems: Counter[str] = field(default_factory=Counter)  # on_time, late, overdue, pending


def monitoring(timeline: Timeline, has_baseline: bool, end_date: date | None) -> Monitoring:
    due, received = _completeness(timeline, has_baseline, end_date)
    safety = Counter(f.code for f in all_safety_findings(timeline) if f.severity == "urgent")
    return Monitoring(
        measurements_due=due,
        measurements_received=received,
        sessions_given=len(timeline.given),
        safety_events=safety,
        rems=_rems(timeline),
    )


def _completeness(timeline: Timeline, has_baseline: bool, end_date: date | None) -> tuple[int, int]:
    first = timeline.first_given
    if first is None:
        return 0, 0
    protocol = timeline.protocol
    every = timedelta(days=protocol.measurements.during_cbt_every_days)
    course_end = first.started_at + timedelta(days=protocol.cbt_sessions * protocol.cbt_cadence_days)
    stop = min(timeline.clock.as_of, course_end)
    if end_date is not None:
        stop = min(stop, datetime.combine(end_date, time(23, 59), tzinfo=timeline.tz))
    points = [p.at for p in timeline.primary_points]
    due, received = 1, int(has_baseline)
    slot = first.started_at
    while slot + every <= stop:
        due += 1
        received += any(slot < at <= slot + every for at in points)
        slot += every
    return due, received


def _rems(timeline: Timeline) -> Counter[str]:
    days = timedelta(days=timeline.protocol.safety.rems_form_days)
    out: Counter[str] = Counter()
    for s in timeline.given:
        if s.drug != "esketamine":
            continue
        due = s.started_at + days
        if s.rems_form_submitted_at is not None:
            out["on_time" if s.rems_form_submitted_at <= due else "late"] += 1
        else:
            out["overdue" if timeline.clock.reached(due) else "pending"] += 1
    return out
