"""The records visible as of an instant, in a canonical order, and the course milestones they imply.

Records dated after as_of are dropped (and their dates remembered by the clock), so a past as_of
reproduces what was knowable then; sorting by (date, id) makes input order irrelevant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from functools import cached_property

from .clock import Clock
from .inputs import Acknowledgement, CbtSessionFacts, EnrollmentFacts, KetamineSessionFacts, MeasurementFacts
from .protocols import Protocol
from .status import Phase, ScorePoint


def cbt_date(session: CbtSessionFacts) -> datetime:
    return session.actual_start if session.actual_start is not None else session.planned_start


def _unique(kind: str, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for record_id in ids:
        if record_id in seen:
            raise ValueError(f"{kind} record id {record_id!r} appears twice")
        seen.add(record_id)


def _as_known(session: KetamineSessionFacts, clock: Clock) -> KetamineSessionFacts:
    """The session as it was recorded by as_of: later vitals, end time and REMS form are not yet known."""
    ended = session.ended_at if session.ended_at is not None and clock.reached(session.ended_at) else None
    rems = session.rems_form_submitted_at
    if rems is not None and not clock.reached(rems):
        rems = None
    vitals = tuple(v for v in session.vital_signs if clock.reached(v.taken_at))
    return session.model_copy(update={"ended_at": ended, "rems_form_submitted_at": rems, "vital_signs": vitals})


@dataclass(frozen=True)
class Timeline:
    enrollment: EnrollmentFacts
    protocol: Protocol
    clock: Clock
    tz: tzinfo
    sessions: tuple[KetamineSessionFacts, ...]
    cbt: tuple[CbtSessionFacts, ...]
    measurements: tuple[MeasurementFacts, ...]
    acknowledgements: tuple[Acknowledgement, ...]

    @property
    def start(self) -> datetime:
        return datetime.combine(self.enrollment.start_date, time(0), tzinfo=self.tz)

    @cached_property
    def given(self) -> tuple[KetamineSessionFacts, ...]:
        # A stopped session still exposed the patient to the drug: it counts for safety and contact.
        return tuple(s for s in self.sessions if s.status in ("completed", "stopped"))

    @cached_property
    def induction(self) -> tuple[KetamineSessionFacts, ...]:
        # Only completed sessions count toward the induction course.
        completed = [s for s in self.sessions if s.status == "completed"]
        return tuple(completed[: self.protocol.induction_sessions])

    @property
    def first_given(self) -> KetamineSessionFacts | None:
        return self.given[0] if self.given else None

    @property
    def induction_done_at(self) -> datetime | None:
        if len(self.induction) < self.protocol.induction_sessions:
            return None
        return self.induction[-1].started_at

    @cached_property
    def attended(self) -> tuple[CbtSessionFacts, ...]:
        return tuple(s for s in self.cbt if s.status == "attended")

    @property
    def cbt_done_at(self) -> datetime | None:
        if len(self.attended) < self.protocol.cbt_sessions:
            return None
        return cbt_date(self.attended[self.protocol.cbt_sessions - 1])

    @property
    def phase(self) -> Phase:
        if self.first_given is None:
            return "baseline"
        if self.induction_done_at is None:
            return "induction"
        return "consolidation" if self.cbt_done_at is None else "maintenance"

    @cached_property
    def _points(self) -> dict[str, tuple[ScorePoint, ...]]:
        return {}

    def points(self, instrument: str) -> tuple[ScorePoint, ...]:
        # Built once per instrument: the schedule, adherence and outcomes each ask for them.
        if instrument not in self._points:
            self._points[instrument] = tuple(
                ScorePoint(record_id=m.id, at=m.authored_at, total=m.total)
                for m in self.measurements
                if m.instrument == instrument and m.complete and m.total is not None
            )
        return self._points[instrument]

    @property
    def primary_points(self) -> tuple[ScorePoint, ...]:
        return self.points(self.enrollment.primary_instrument)


def build_timeline(
    enrollment: EnrollmentFacts,
    sessions: Sequence[KetamineSessionFacts],
    cbt: Sequence[CbtSessionFacts],
    measurements: Sequence[MeasurementFacts],
    acknowledgements: Sequence[Acknowledgement],
    protocol: Protocol,
    clock: Clock,
    tz: tzinfo,
) -> Timeline:
    _unique("ketamine session", (s.id for s in sessions))
    _unique("CBT session", (s.id for s in cbt))
    _unique("measurement", (m.id for m in measurements))
    visible_sessions = sorted(
        (_as_known(s, clock) for s in sessions if clock.reached(s.started_at)), key=lambda s: (s.started_at, s.id)
    )
    visible_cbt = sorted(
        (s for s in cbt if clock.reached(cbt_date(s))), key=lambda s: (cbt_date(s), s.session_number, s.id)
    )
    visible_measurements = sorted(
        (m for m in measurements if m.status != "entered-in-error" and clock.reached(m.authored_at)),
        key=lambda m: (m.authored_at, m.id),
    )
    visible_acks = tuple(a for a in acknowledgements if clock.reached(a.acknowledged_at))
    return Timeline(
        enrollment=enrollment,
        protocol=protocol,
        clock=clock,
        tz=tz,
        sessions=tuple(visible_sessions),
        cbt=tuple(visible_cbt),
        measurements=tuple(visible_measurements),
        acknowledgements=visible_acks,
    )
