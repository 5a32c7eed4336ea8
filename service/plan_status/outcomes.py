"""Per-instrument outcomes (baseline, change, response, remission, non-response, worsening, relapse) and
the reasons they give.

Definitions follow CLINICAL.md section 4; thresholds come from the instrument definition so GAD-7, MADRS
and QIDS use their own remission and worsening rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.instruments import INSTRUMENTS, Instrument

from .flags import Finding
from .protocols import Protocol
from .status import InstrumentOutcome, ScorePoint
from .timeline import Timeline
from .wording import day, days, number, session_noun


@dataclass(frozen=True, slots=True)
class Trajectory:
    outcome: InstrumentOutcome
    # The latest score on/before the first session when it is too old to be a baseline.
    stale_baseline: ScorePoint | None
    non_response_point: ScorePoint | None
    worsening_pair: tuple[ScorePoint, ScorePoint] | None
    relapses: tuple[tuple[ScorePoint, ScorePoint], ...]


def _baseline(
    points: Sequence[ScorePoint], first_at: datetime, max_age_days: float
) -> tuple[ScorePoint | None, ScorePoint | None]:
    before = [p for p in points if p.at <= first_at]
    if not before:
        return None, None
    last = before[-1]
    if first_at - last.at <= timedelta(days=max_age_days):
        return last, None
    return None, last


def _reduction(baseline: ScorePoint, point: ScorePoint) -> float | None:
    if baseline.total <= 0:
        return None  # no room to improve: response cannot be judged
    return (baseline.total - point.total) / baseline.total


def response_threshold(instrument: Instrument, protocol: Protocol) -> float:
    """The share the score must fall from baseline to count as response: the instrument's, else the protocol's."""
    return instrument.response_reduction or protocol.default_response_reduction


def is_response(instrument: Instrument, protocol: Protocol, baseline: ScorePoint, point: ScorePoint) -> bool:
    """The engine's response rule for one score against the baseline (the programme outcomes reuse it)."""
    reduction = _reduction(baseline, point)
    return reduction is not None and reduction >= response_threshold(instrument, protocol)


def is_remission(instrument: Instrument, point: ScorePoint) -> bool:
    return instrument.remission is not None and instrument.remission.met_by(point.total)


def trajectory(instrument: Instrument, timeline: Timeline) -> Trajectory:
    protocol = timeline.protocol
    points = timeline.points(instrument.key)
    first = timeline.first_given
    baseline, stale = (
        _baseline(points, first.started_at, protocol.measurements.baseline_max_age_days) if first else (None, None)
    )
    follow_ups = [p for p in points if baseline is not None and p.at > baseline.at]

    def responded(p: ScorePoint) -> bool:
        return baseline is not None and is_response(instrument, protocol, baseline, p)

    responded_at: datetime | None = None
    relapses: list[tuple[ScorePoint, ScorePoint]] = []
    responding = False
    run: list[ScorePoint] = []
    for point in follow_ups:
        if responded(point):
            responded_at = responded_at or point.at
            responding, run = True, []
        elif responding and baseline is not None and _reduction(baseline, point) is not None:
            # A run of consecutive non-responding scores spanning the minimum interval is a relapse.
            run.append(point)
            if run[-1].at - run[0].at >= timedelta(days=protocol.relapse_min_days_apart) and len(run) >= 2:
                relapses.append((run[0], run[-1]))
                responding, run = False, []
    relapse_now = bool(relapses) and not any(responded(p) for p in follow_ups if p.at > relapses[-1][1].at)

    non_response_point = None
    non_response: bool | None = None
    done_at = timeline.induction_done_at
    if done_at is not None and baseline is not None:
        after = [p for p in follow_ups if p.at > done_at]
        # Response already reached during the induction: losing it later is a relapse, not non-response.
        if any(responded(p) for p in follow_ups if p.at <= done_at):
            non_response = False
        elif after and _reduction(baseline, after[0]) is not None:
            # A late response after a failed first post-induction score overrides the verdict.
            non_response = not any(responded(p) for p in after)
            non_response_point = after[0] if non_response else None

    remitted = [p for p in follow_ups if instrument.remission is not None and instrument.remission.met_by(p.total)]
    latest = points[-1] if points else None
    worsening_pair = None
    rise = instrument.worsening_rise
    if len(points) >= 2 and rise is not None and points[-1].total - points[-2].total >= rise:
        worsening_pair = (points[-2], points[-1])
    last_follow_up = follow_ups[-1] if follow_ups else None
    change = None
    if baseline is not None and last_follow_up is not None and baseline.total > 0:
        change = round((last_follow_up.total - baseline.total) / baseline.total * 100, 1)
    outcome = InstrumentOutcome(
        instrument=instrument.key,
        title=instrument.title,
        baseline=baseline,
        latest=latest,
        latest_band=instrument.band_for(latest.total) if latest else None,
        change_percent=change,
        in_response=responded(last_follow_up) if last_follow_up and change is not None else None,
        responded_at=responded_at,
        in_remission=(
            instrument.remission.met_by(last_follow_up.total)
            if last_follow_up is not None and instrument.remission is not None
            else None
        ),
        remitted_at=remitted[0].at if remitted else None,
        non_response=non_response,
        worsening=worsening_pair is not None,
        relapse=relapse_now,
        relapsed_at=relapses[-1][1].at if relapse_now else None,
    )
    return Trajectory(outcome, stale, non_response_point, worsening_pair, tuple(relapses))


def outcome_instruments(timeline: Timeline) -> list[Instrument]:
    """The primary instrument, then every other instrument with a total that has a score, by key."""
    primary = INSTRUMENTS.get(timeline.enrollment.primary_instrument)
    others = sorted(
        {m.instrument for m in timeline.measurements if m.total is not None and m.complete}
        - {timeline.enrollment.primary_instrument}
    )
    chosen = [primary] if primary is not None else []
    chosen += [INSTRUMENTS[key] for key in others if key in INSTRUMENTS and INSTRUMENTS[key].has_total]
    return chosen


def _short(instrument: Instrument) -> str:
    return instrument.key.upper().replace("-SR16", "-SR").replace("-SCREENER", "")


def outcome_findings(instrument: Instrument, traj: Trajectory, timeline: Timeline, *, primary: bool) -> list[Finding]:
    tz, name = timeline.tz, _short(instrument)
    out: list[Finding] = []
    first = timeline.first_given
    max_age = timeline.protocol.measurements.baseline_max_age_days
    if primary and first is not None and traj.outcome.baseline is None:
        noun = session_noun(first.drug)
        if traj.stale_baseline is not None:
            stale = traj.stale_baseline
            out.append(
                Finding(
                    "baseline_too_old",
                    "warning",
                    f"The last {name} before the first {noun} on {day(first.started_at, tz)} was taken on "
                    f"{day(stale.at, tz)}, more than {days(max_age)} earlier, so it cannot serve as the "
                    "starting score and whether treatment helps cannot be measured — note this in the plan.",
                    first.id,
                    first.started_at,
                    (stale.record_id,),
                )
            )
        else:
            out.append(
                Finding(
                    "baseline_missing",
                    "warning",
                    f"No {name} was recorded in the {days(max_age)} before the first {noun} on "
                    f"{day(first.started_at, tz)}, so there is no starting score and whether treatment helps cannot "
                    "be measured",
                    first.id,
                    first.started_at,
                    (timeline.enrollment.id,),
                    next_step="note this in the plan",
                )
            )
    baseline = traj.outcome.baseline
    if primary and traj.non_response_point is not None and baseline is not None:
        p = traj.non_response_point
        out.append(
            Finding(
                "non_response",
                "warning",
                f"{name} was {number(p.total)} on {day(p.at, tz)}, the first score after the induction, against "
                f"{number(baseline.total)} before treatment: it has not fallen by half, so the induction has not "
                "worked as hoped — review the plan with the prescriber.",
                p.record_id,
                p.at,
                (baseline.record_id,),
            )
        )
    if traj.worsening_pair is not None:
        before, after = traj.worsening_pair
        out.append(
            Finding(
                "worsening",
                "warning",
                f"{name} rose from {number(before.total)} on {day(before.at, tz)} to {number(after.total)} on "
                f"{day(after.at, tz)} — check in with the patient this week.",
                after.record_id,
                after.at,
                (before.record_id,),
            )
        )
    if primary:
        for start, confirm in traj.relapses:
            out.append(
                Finding(
                    "relapse",
                    "urgent",
                    f"{name} had fallen by half but has been back above half of the score before treatment"
                    f"{_baseline_words(traj)} since {day(start.at, tz)} ({number(start.total)}, then "
                    f"{number(confirm.total)} on {day(confirm.at, tz)}): possible relapse",
                    confirm.record_id,
                    confirm.at,
                    (start.record_id,),
                    next_step="review the plan with the prescriber",
                )
            )
    return out


def _baseline_words(traj: Trajectory) -> str:
    baseline = traj.outcome.baseline
    return f" ({number(baseline.total)})" if baseline is not None else ""
