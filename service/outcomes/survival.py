"""Kaplan-Meier estimates with Greenwood log-log ("exponential Greenwood") confidence bands, numbers at risk and
the log-rank test between two groups. Pure standard-library arithmetic.

A small implementation rather than a dependency: lifelines would bring numpy, scipy, pandas and matplotlib into the
service for a few sums. It is checked against lifelines in tests/outcomes/test_survival_lifelines.py (a dev-only
dependency) and against a hand-computed example in tests/outcomes/test_survival.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True, slots=True)
class Observation:
    """One patient: the time followed (days) and whether the event (relapse) ended it; False = censored."""

    time: float
    event: bool


@dataclass(frozen=True, slots=True)
class Step:
    """The estimate just after `time`: survival, its band, and who was at risk just before it."""

    time: float
    at_risk: int
    events: int
    censored: int
    survival: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Curve:
    steps: tuple[Step, ...]  # one per distinct time with an event or a censoring, in order; starts at time 0
    patients: int
    events: int

    def at(self, time: float) -> Step:
        """The step in force at `time` (the last one at or before it)."""
        current = self.steps[0]
        for step in self.steps:
            if step.time > time:
                break
            current = step
        return current

    def at_risk(self, time: float) -> int:
        """Patients still followed and event-free just before `time`."""
        later = [s for s in self.steps if s.time >= time and (s.events or s.censored)]
        return later[0].at_risk if later else 0

    @property
    def median(self) -> float | None:
        """The first time the estimate falls to one half or below; None while it stays above."""
        return next((s.time for s in self.steps if s.survival <= 0.5), None)


def kaplan_meier(observations: Sequence[Observation], confidence: float = 0.95) -> Curve:
    """S(t) = Π (1 - d/n) over the event times up to t; Var by Greenwood, Σ d / (n (n - d)); the band is built on
    log(-log S) so it stays within 0 and 1: S^exp(±z·√(Σ d/(n(n-d))) / log S)."""
    if any(o.time < 0 or math.isnan(o.time) for o in observations):
        raise ValueError("follow-up times must be zero or more")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    times = sorted({o.time for o in observations})
    at_risk = len(observations)
    survival, greenwood = 1.0, 0.0
    steps = [Step(0.0, at_risk, 0, 0, 1.0, 1.0, 1.0)]
    for t in times:
        events = sum(1 for o in observations if o.time == t and o.event)
        censored = sum(1 for o in observations if o.time == t and not o.event)
        if events:
            survival *= 1 - events / at_risk
            greenwood = greenwood + events / (at_risk * (at_risk - events)) if at_risk > events else math.inf
        lower, upper = _band(survival, greenwood, z)
        step = Step(t, at_risk, events, censored, survival, lower, upper)
        steps = [*steps[:-1], step] if t == 0 and len(steps) == 1 else [*steps, step]
        at_risk -= events + censored
    return Curve(tuple(steps), len(observations), sum(1 for o in observations if o.event))


def _band(survival: float, greenwood: float, z: float) -> tuple[float, float]:
    if survival >= 1.0:
        return 1.0, 1.0
    if survival <= 0.0 or math.isinf(greenwood):
        return 0.0, 0.0
    log_s = math.log(survival)  # negative
    spread = z * math.sqrt(greenwood) / log_s  # negative
    centre = math.log(-log_s)
    return math.exp(-math.exp(centre - spread)), math.exp(-math.exp(centre + spread))


@dataclass(frozen=True, slots=True)
class LogRank:
    chi_square: float
    p_value: float
    observed: tuple[int, int]
    expected: tuple[float, float]


def log_rank(first: Sequence[Observation], second: Sequence[Observation]) -> LogRank | None:
    """The log-rank test of equal survival in two groups (one degree of freedom); None without any event."""
    pooled = [(o, 0) for o in first] + [(o, 1) for o in second]
    event_times = sorted({o.time for o, _ in pooled if o.event})
    if not event_times:
        return None
    observed1 = expected1 = variance = 0.0
    for t in event_times:
        n1 = sum(1 for o, g in pooled if g == 0 and o.time >= t)
        n = sum(1 for o, _ in pooled if o.time >= t)
        d1 = sum(1 for o, g in pooled if g == 0 and o.time == t and o.event)
        d = sum(1 for o, _ in pooled if o.time == t and o.event)
        observed1 += d1
        expected1 += d * n1 / n
        if n > 1:
            variance += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    total_events = sum(1 for o, _ in pooled if o.event)
    chi = (observed1 - expected1) ** 2 / variance if variance > 0 else 0.0
    return LogRank(
        chi_square=chi,
        p_value=math.erfc(math.sqrt(chi / 2)),  # the chi-square (1 df) tail
        observed=(int(observed1), total_events - int(observed1)),
        expected=(expected1, total_events - expected1),
    )
