"""Due dates: the next ketamine session, CBT session, primary measurement and REMS forms, and how many of
each the protocol expected by as_of.

A deadline is overdue from its due date plus the protocol's grace period (CLINICAL.md section 4); REMS forms
have a regulatory deadline and get no grace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import Clock
from .protocols import Cadence
from .status import Count, Counts, Due, DueKind
from .timeline import Timeline, cbt_date
from .wording import day, session_noun

# Enough for years of weekly slots; a longer gap is still one overdue reason.
_MAX_MISSED = 200


@dataclass(frozen=True, slots=True)
class Deadline:
    kind: DueKind
    code: str  # the flag raised when overdue
    due_at: datetime
    earliest_at: datetime | None
    overdue_from: datetime | None
    after_record_id: str
    what: str  # what is due, in words, for the overdue message
    booked: bool = False  # due at a booked appointment (plan_status/appointments.py)
    # A recurring measurement: its first slot by the cadence, and the cadence, so each slot missed can be named.
    slots_from: datetime | None = None
    every_days: float | None = None

    def due(self, overdue: bool, clock: Clock) -> Due:
        return Due(
            kind=self.kind,
            due_at=self.due_at,
            earliest_at=self.earliest_at,
            overdue_from=self.overdue_from,
            overdue=overdue,
            after_record_id=self.after_record_id,
            booked=self.booked,
            missed=self._missed(clock) if overdue else (),
        )

    def _missed(self, clock: Clock) -> tuple[datetime, ...]:
        """The slots due by as_of with nothing received since the last one (a gap of eight weeks: eight slots).
        The next slot is a possible change, so the status is recomputed when it passes."""
        if self.slots_from is None or self.every_days is None:
            return (self.due_at,)
        missed: list[datetime] = []
        slot = self.slots_from
        while len(missed) < _MAX_MISSED and clock.reached(slot):
            missed.append(slot)
            slot += _d(self.every_days)
        return tuple(missed)


def _d(n: float) -> timedelta:
    return timedelta(days=n)


def week_of(timeline: Timeline, instant: datetime) -> int:
    first = timeline.first_given
    return 1 if first is None else (instant - first.started_at) // timedelta(days=7) + 1


def _maintenance_cadence(timeline: Timeline, last: datetime) -> Cadence | None:
    """The cadence of the week after the last session: the latest the next one may fall."""
    week = week_of(timeline, last) + 1
    stages = [s for s in timeline.protocol.maintenance_stages if s.from_week <= week]
    return stages[-1].cadence if stages else None


def ketamine_deadline(timeline: Timeline) -> Deadline | None:
    protocol, grace = timeline.protocol, _d(timeline.protocol.grace_days)
    noun = session_noun(protocol.drug)
    if not timeline.given:
        due = timeline.start + _d(protocol.first_session_within_days)
        return Deadline(
            "ketamine_session",
            "ketamine_overdue",
            due,
            None,
            due + grace,
            timeline.enrollment.id,
            f"The first {noun} was due by {day(due, timeline.tz)} and has not been given",
        )
    last = timeline.given[-1]
    cadence = protocol.induction_cadence if timeline.induction_done_at is None else None
    if cadence is None:
        cadence = _maintenance_cadence(timeline, last.started_at)
    if cadence is None:
        return None
    due = last.started_at + _d(cadence.max_days_between)
    stage = "induction" if timeline.induction_done_at is None else "maintenance"
    return Deadline(
        "ketamine_session",
        "ketamine_overdue",
        due,
        last.started_at + _d(cadence.min_days_between),
        due + grace,
        last.id,
        f"The next {stage} {noun} was due by {day(due, timeline.tz)} (last one {day(last.started_at, timeline.tz)})"
        " and has not been given",
    )


def cbt_deadline(timeline: Timeline, responded_at: datetime | None) -> Deadline | None:
    protocol, tz = timeline.protocol, timeline.tz
    grace = _d(protocol.grace_days)
    if timeline.cbt_done_at is not None:
        return None
    if timeline.attended:
        last = timeline.attended[-1]
        due = cbt_date(last) + _d(protocol.cbt_cadence_days)
        return Deadline(
            "cbt_session",
            "cbt_overdue",
            due,
            None,
            due + grace,
            last.id,
            f"CBT session {len(timeline.attended) + 1} was due by {day(due, tz)} (last attended "
            f"{day(cbt_date(last), tz)}) and has not taken place",
        )
    first = timeline.first_given
    if first is None:
        return None
    if protocol.cbt_start_rule == "with_induction":
        anchor, basis, why = first.started_at, first.id, f"the first {session_noun(first.drug)}"
    else:
        done = timeline.induction_done_at
        candidates = [t for t in (responded_at, done) if t is not None]
        if not candidates:
            return None
        anchor = min(candidates)
        basis = next((p.record_id for p in timeline.primary_points if p.at == responded_at), first.id)
        why = "response" if anchor == responded_at else "the end of the induction"
        if anchor != responded_at and timeline.induction:
            basis = timeline.induction[-1].id
    due = anchor + _d(protocol.cbt_start_within_days)
    return Deadline(
        "cbt_session",
        "cbt_not_started",
        due,
        anchor,
        due + grace,
        basis,
        f"CBT has not started: the first session was due by {day(due, tz)}, within "
        f"{protocol.cbt_start_within_days:g} days of {why} on {day(anchor, tz)}",
    )


def measurement_deadline(timeline: Timeline, ketamine: Deadline | None) -> Deadline | None:
    schedule, tz = timeline.protocol.measurements, timeline.tz
    grace = _d(timeline.protocol.grace_days)
    name = timeline.enrollment.primary_instrument.upper()
    points = timeline.primary_points
    last = points[-1] if points else None
    phase = timeline.phase
    if phase == "baseline":
        due = last.at + _d(schedule.baseline_max_age_days) if last else timeline.start
        return Deadline(
            "measurement",
            "baseline_due",
            due,
            None,
            None,
            last.record_id if last else timeline.enrollment.id,
            f"A baseline {name} is needed before the first {session_noun(timeline.protocol.drug)}",
        )
    if phase == "maintenance":
        interval = schedule.maintenance_every_days
    elif phase == "consolidation" or timeline.attended:
        interval = schedule.during_cbt_every_days
    else:
        interval = None
    first = timeline.first_given
    assert first is not None
    ref_at, ref_id = (last.at, last.record_id) if last else (first.started_at, first.id)
    due_by_interval = ref_at + _d(interval) if interval is not None else None
    last_words = f"last on {day(ref_at, tz)}" if last else "none since the first session"
    late = (
        f"A {name} was due by {day(due_by_interval, tz)} (every {interval:g} days; {last_words}) and has not "
        "been completed"
        if due_by_interval is not None and interval is not None
        else ""
    )
    overdue_from = due_by_interval + grace if due_by_interval is not None else None
    predose = ketamine.due_at if ketamine is not None and phase == "induction" else None
    if (
        schedule.before_each_induction_session
        and predose is not None
        and (due_by_interval is None or predose < due_by_interval)
    ):
        # Pre-dose questionnaires come first; only the weekly rule (once CBT runs) can make one overdue.
        return Deadline(
            "measurement", "measurement_overdue", predose, None, overdue_from, ref_id, late,
            slots_from=due_by_interval, every_days=interval,
        )  # fmt: skip
    if due_by_interval is None:
        return None
    return Deadline(
        "measurement", "measurement_overdue", due_by_interval, None, overdue_from, ref_id, late,
        slots_from=due_by_interval, every_days=interval,
    )  # fmt: skip


def rems_deadlines(timeline: Timeline) -> list[Deadline]:
    days = timeline.protocol.safety.rems_form_days
    return [
        Deadline(
            "rems_form",
            "rems_form_overdue",
            s.started_at + _d(days),
            None,
            s.started_at + _d(days),
            s.id,
            f"The Spravato REMS monitoring form for the session on {day(s.started_at, timeline.tz)} was due by "
            f"{day(s.started_at + _d(days), timeline.tz)} and has not been submitted",
        )
        for s in timeline.given
        if s.drug == "esketamine" and s.rems_form_submitted_at is None
    ]


def _periods(timeline: Timeline, start: datetime, end: datetime | None, every: float) -> int:
    """Whole periods elapsed from start to min(end, as_of); the next boundary is a possible change."""
    clock = timeline.clock
    stop = end if end is not None and clock.reached(end) else clock.as_of
    n = max(0, (stop - start) // _d(every))
    if end is None or not clock.reached(end):
        clock.reached(start + _d(every) * (n + 1))
    return int(n)


def counts(timeline: Timeline) -> Counts:
    protocol, schedule = timeline.protocol, timeline.protocol.measurements
    expected = 1
    if schedule.before_each_induction_session:
        expected += max(0, min(len(timeline.given), protocol.induction_sessions) - 1)
    done_at, cbt_done = timeline.induction_done_at, timeline.cbt_done_at
    if done_at is not None:
        # Weekly CBT measurements are counted once the pre-dose ones stop, so slots never double up.
        start = max(done_at, cbt_date(timeline.attended[0])) if timeline.attended else done_at
        expected += _periods(timeline, start, cbt_done, schedule.during_cbt_every_days)
    if cbt_done is not None and done_at is not None:
        expected += _periods(timeline, max(cbt_done, done_at), None, schedule.maintenance_every_days)
    window_start = timeline.start - _d(schedule.baseline_max_age_days)
    done = sum(1 for p in timeline.primary_points if p.at >= window_start)
    return Counts(
        ketamine_induction=Count(done=len(timeline.induction), expected=protocol.induction_sessions),
        ketamine_after_induction=sum(
            1 for s in timeline.given if s.status == "completed" and done_at is not None and s.started_at > done_at
        ),
        cbt=Count(done=len(timeline.attended), expected=protocol.cbt_sessions),
        measurements=Count(done=done, expected=expected),
    )
