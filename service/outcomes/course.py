"""One enrolment's course and what the programme outcomes read from it, computed with the plan-status engine's own
rules (baseline, response, remission, relapse, safety findings, REMS due dates): nothing here restates a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from service.instruments import INSTRUMENTS
from service.plan_status import (
    Acknowledgement,
    AppointmentFacts,
    CbtSessionFacts,
    EnrollmentFacts,
    KetamineSessionFacts,
    MeasurementFacts,
    Protocol,
    ScorePoint,
)
from service.plan_status.appointments import appointment_sessions
from service.plan_status.clock import Clock
from service.plan_status.outcomes import trajectory
from service.plan_status.timeline import Timeline, build_timeline

from .monitoring import Monitoring, monitoring
from .response import MILESTONES, Milestone, milestones


@dataclass(frozen=True)
class Course:
    """What Tandem holds for one enrolment (the facts the plan-status engine reads)."""

    enrollment: EnrollmentFacts
    protocol: Protocol
    administrations: Sequence[KetamineSessionFacts] = ()
    cbt_sessions: Sequence[CbtSessionFacts] = ()
    measurements: Sequence[MeasurementFacts] = ()
    appointments: Sequence[AppointmentFacts] = ()
    acknowledgements: Sequence[Acknowledgement] = ()
    end_date: date | None = None


# The first 8 weeks of treatment, over which CBT adherence is measured (issue #23).
ADHERENCE_WINDOW = timedelta(weeks=8)
AdherenceGroup = str  # "adherent" | "less_adherent" | "no_cbt_planned"


@dataclass(frozen=True)
class Durability:
    """From the first response: days followed, and whether the engine's relapse rule ended it."""

    responded_at: datetime
    days: float
    relapsed: bool
    relapsed_at: datetime | None


@dataclass(frozen=True)
class PatientOutcome:
    enrollment: EnrollmentFacts
    first_session_at: datetime | None
    baseline_score: float | None
    milestones: dict[str, Milestone]
    durability: Durability | None
    cbt_planned: int
    cbt_attended: int
    adherence_group: AdherenceGroup
    monitoring: Monitoring
    therapist_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def adherence_share(self) -> float | None:
        return self.cbt_attended / self.cbt_planned if self.cbt_planned else None


def course_timeline(course: Course, as_of: datetime, tz: tzinfo) -> Timeline:
    cbt = [*course.cbt_sessions, *appointment_sessions(course.appointments, course.cbt_sessions, tz)]
    return build_timeline(
        course.enrollment,
        course.administrations,
        cbt,
        course.measurements,
        course.acknowledgements,
        course.protocol,
        Clock(as_of),
        tz,
    )


def patient_outcome(course: Course, as_of: datetime, tz: tzinfo, *, adherent_share: float) -> PatientOutcome:
    """Everything the report counts for one enrolment, as knowable at as_of (records dated later are ignored)."""
    timeline = course_timeline(course, as_of, tz)
    instrument = INSTRUMENTS[course.enrollment.primary_instrument]
    traj = trajectory(instrument, timeline)
    baseline = traj.outcome.baseline
    first = timeline.first_given
    start = first.started_at if first is not None else timeline.start
    planned, attended = _cbt_in_window(timeline, start)
    if planned == 0:
        group = "no_cbt_planned"
    else:
        group = "adherent" if attended / planned >= adherent_share else "less_adherent"
    return PatientOutcome(
        enrollment=course.enrollment,
        first_session_at=first.started_at if first is not None else None,
        baseline_score=baseline.total if baseline is not None else None,
        milestones=milestones(instrument, timeline, baseline),
        durability=_durability(traj.outcome.responded_at, traj.relapses, timeline),
        cbt_planned=planned,
        cbt_attended=attended,
        adherence_group=group,
        monitoring=monitoring(timeline, baseline is not None, course.end_date),
    )


def _cbt_in_window(timeline: Timeline, start: datetime) -> tuple[int, int]:
    """CBT sessions planned (any status, dated by as_of) and attended in the first 8 weeks from `start`."""
    end = start + ADHERENCE_WINDOW
    window = [s for s in timeline.cbt if start - timedelta(days=1) <= s.planned_start < end]
    return len(window), sum(1 for s in window if s.status == "attended")


def _durability(
    responded_at: datetime | None, relapses: Sequence[tuple[ScorePoint, ScorePoint]], timeline: Timeline
) -> Durability | None:
    if responded_at is None:
        return None
    # The engine's relapse: two consecutive scores back under the response line; dated by the confirming score.
    relapse_at = next((confirm.at for _, confirm in relapses if confirm.at > responded_at), None)
    if relapse_at is not None:
        return Durability(responded_at, _days(relapse_at - responded_at), True, relapse_at)
    points = [p for p in timeline.primary_points if p.at >= responded_at]
    last = points[-1].at if points else responded_at
    return Durability(responded_at, _days(last - responded_at), False, None)


def _days(span: timedelta) -> float:
    return round(span.total_seconds() / 86_400, 3)


__all__ = ["MILESTONES", "Course", "Durability", "PatientOutcome", "course_timeline", "patient_outcome"]
