"""Response and remission at weeks 4, 8 and 12 of treatment, at 12 months and at the end of the induction, per
patient.

A milestone's score is the primary score closest to the milestone (week w: w weeks after the first ketamine or
esketamine session) within MILESTONE_WINDOW either side (at 12 months: 60 days either side, CMS159's window); at
the end of the induction, the first score after the last induction session within two windows (the engine's
non-response point). Response and remission are the
engine's rules (plan_status.outcomes.is_response / is_remission) against the engine's baseline.

- not_due: no first session yet, or the milestone's window had not closed by the period's end (a score may still
  come); such a patient is outside that milestone's denominator;
- missing: the window closed without a score, or there is no baseline to compare with (counted in the
  denominator, against the rate, as CMS159 counts a missing follow-up);
- measured: a score, responding or not, remitted or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from service.instruments import Instrument
from service.plan_status import ScorePoint
from service.plan_status.outcomes import is_remission, is_response
from service.plan_status.timeline import Timeline

MILESTONE_WINDOW = timedelta(days=7)
# Keys in report order, and their words.
MILESTONES: dict[str, str] = {
    "end_of_induction": "End of induction",
    "week_4": "Week 4",
    "week_8": "Week 8",
    "week_12": "Week 12",
    "month_12": "12 months",
}
# Days after the first session, and the window either side, of each dated milestone.
DATED: dict[str, tuple[timedelta, timedelta]] = {
    "week_4": (timedelta(weeks=4), MILESTONE_WINDOW),
    "week_8": (timedelta(weeks=8), MILESTONE_WINDOW),
    "week_12": (timedelta(weeks=12), MILESTONE_WINDOW),
    "month_12": (timedelta(days=365), timedelta(days=60)),  # CMS159: remission at twelve months (+/- 60 days)
}
MilestoneState = Literal["not_due", "missing", "measured"]


@dataclass(frozen=True, slots=True)
class Milestone:
    state: MilestoneState
    score: float | None = None
    at: datetime | None = None
    responded: bool = False
    remitted: bool = False


def milestones(instrument: Instrument, timeline: Timeline, baseline: ScorePoint | None) -> dict[str, Milestone]:
    first = timeline.first_given
    if first is None:
        return {key: Milestone("not_due") for key in MILESTONES}
    points = [p for p in timeline.primary_points if baseline is None or p.at > baseline.at]
    out: dict[str, Milestone] = {}
    done_at = timeline.induction_done_at
    if done_at is None:
        out["end_of_induction"] = Milestone("not_due")
    else:
        after = [p for p in points if done_at < p.at <= done_at + 2 * MILESTONE_WINDOW]
        closed = timeline.clock.as_of >= done_at + 2 * MILESTONE_WINDOW
        out["end_of_induction"] = _verdict(instrument, timeline, baseline, after[0] if after else None, closed)
    for key, (offset, window) in DATED.items():
        target = first.started_at + offset
        near = [p for p in points if abs(p.at - target) <= window]
        chosen = min(near, key=lambda p: (abs(p.at - target), p.at)) if near else None
        closed = timeline.clock.as_of >= target + window
        out[key] = _verdict(instrument, timeline, baseline, chosen, closed)
    return out


def _verdict(
    instrument: Instrument, timeline: Timeline, baseline: ScorePoint | None, point: ScorePoint | None, closed: bool
) -> Milestone:
    if not closed:
        return Milestone("not_due")
    if point is None or baseline is None:
        return Milestone("missing")
    return Milestone(
        "measured",
        score=point.total,
        at=point.at,
        responded=is_response(instrument, timeline.protocol, baseline, point),
        remitted=is_remission(instrument, point),
    )
