"""Which ketamine/esketamine session a vital sign sent on its own was taken at, and the readings it adds.

A session's monitoring (CLINICAL.md section 3, esketamine label; the IV protocol monitors the same way): blood
pressure before dosing, about 40 minutes after, and until discharge after at least 120 minutes of observation.
A reading belongs to the session whose window holds it:
- from PRE_DOSE before the dose starts (the pre-dose check, taken on arrival),
- to discharge: the later of the infusion's end and the recorded observation time, and at least
  MIN_OBSERVATION after the start.
Anything else is the patient's own vitals (pre-treatment screening), never a session's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .inputs import VitalSigns

# The pre-dose check is taken on arrival, before the dose is drawn up: an hour covers check-in (CLINICAL.md §3).
PRE_DOSE = timedelta(minutes=60)
# Esketamine label: at least 120 minutes of observation after the dose, BP ~40 min after (CLINICAL.md §3).
MIN_OBSERVATION = timedelta(minutes=120)


@dataclass(frozen=True)
class SessionTimes:
    id: str
    started_at: datetime
    ended_at: datetime | None = None
    observation_minutes: int | None = None


@dataclass(frozen=True)
class SentReading:
    """A vital sign sent on its own: one or both pressures, or a heart rate or SpO2."""

    taken_at: datetime
    session_id: str | None = None  # the session it names (sent, or found at intake)
    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None
    spo2: int | None = None


def session_window(session: SessionTimes) -> tuple[datetime, datetime]:
    start = session.started_at - PRE_DOSE
    end = session.started_at + MIN_OBSERVATION
    if session.ended_at is not None:
        end = max(end, session.ended_at)
    if session.observation_minutes is not None:
        end = max(end, (session.ended_at or session.started_at) + timedelta(minutes=session.observation_minutes))
    return start, end


def session_at(taken_at: datetime, sessions: Iterable[SessionTimes]) -> str | None:
    """The session whose window holds the instant; of two overlapping windows, the one started closest before."""
    holding = [s for s in sessions if session_window(s)[0] <= taken_at <= session_window(s)[1]]
    if not holding:
        return None
    return min(holding, key=lambda s: (abs((taken_at - s.started_at).total_seconds()), s.id)).id


def readings_for(
    session: SessionTimes, sent: Sequence[SentReading], sessions: Sequence[SessionTimes]
) -> list[VitalSigns]:
    """The readings sent on their own that belong to this session: those naming it, and those naming none whose
    time falls in its window (a session recorded after its vitals). A systolic and a diastolic sent as separate
    Observations at the same instant are one blood pressure, as the safety rules read it."""
    mine = [r for r in sent if (r.session_id or session_at(r.taken_at, sessions)) == session.id]
    return pair_pressures(mine)


def pair_pressures(sent: Iterable[SentReading]) -> list[VitalSigns]:
    by_time: dict[datetime, dict[str, int]] = {}
    others: list[VitalSigns] = []
    for r in sent:
        if r.systolic is not None or r.diastolic is not None:
            values = by_time.setdefault(r.taken_at, {})
            if r.systolic is not None:
                values["systolic"] = r.systolic
            if r.diastolic is not None:
                values["diastolic"] = r.diastolic
        else:
            others.append(VitalSigns(taken_at=r.taken_at, heart_rate=r.heart_rate, spo2=r.spo2))
    pressures = [VitalSigns(taken_at=t, **values) for t, values in by_time.items()]
    return sorted([*pressures, *others], key=lambda v: v.taken_at)
