"""Kaplan-Meier, Greenwood log-log bands and numbers at risk against a small example worked by hand."""

from __future__ import annotations

import math

import pytest

from service.outcomes.survival import Observation, kaplan_meier, log_rank

# Six patients, days from first response: relapse at 2; censored at 3; two relapses at 4; censored at 6;
# relapse at 8.
EXAMPLE = [
    Observation(2, True),
    Observation(3, False),
    Observation(4, True),
    Observation(4, True),
    Observation(6, False),
    Observation(8, True),
]

# By hand (z = 1.959964 for 95 %):
#   t=2: at risk 6, 1 relapse:  S = 1 - 1/6 = 5/6 = 0.833333; Greenwood sum = 1/(6*5) = 0.033333
#        log S = ln(5/6) = -0.182322; sqrt(sum) = 0.182574
#        spread = z * 0.182574 / -0.182322 = -1.962680; centre = ln(-log S) = ln(0.182322) = -1.701983
#        lower = exp(-exp(centre - spread)) = exp(-exp(0.260696)) = exp(-1.297834) = 0.273123
#        upper = exp(-exp(centre + spread)) = exp(-exp(-3.664663)) = exp(-0.025613) = 0.974712
#   t=3: one censored (at risk 5): S unchanged
#   t=4: at risk 4, 2 relapses: S = 5/6 * (1 - 2/4) = 5/12 = 0.416667; sum = 0.033333 + 2/(4*2) = 0.283333
#        log S = -0.875469; sqrt(sum) = 0.532291; spread = z * 0.532291 / -0.875469 = -1.191671
#        centre = ln(0.875469) = -0.132996
#        lower = exp(-exp(1.058675)) = exp(-2.882549) = 0.055992
#        upper = exp(-exp(-1.324667)) = exp(-0.265892) = 0.766522
#   t=6: one censored (at risk 2): S unchanged
#   t=8: at risk 1, 1 relapse: S = 0 (band 0..0)
#   median: the first time S <= 0.5 -> day 4
#   at risk just before day 0: 6; day 3: 5; day 5: 2; day 9: 0


def test_kaplan_meier_matches_the_hand_computation() -> None:
    curve = kaplan_meier(EXAMPLE)
    by_time = {s.time: s for s in curve.steps}
    expected = {
        0: (6, 1.0, 1.0, 1.0),
        2: (6, 5 / 6, 0.273123, 0.974712),
        3: (5, 5 / 6, 0.273123, 0.974712),
        4: (4, 5 / 12, 0.055992, 0.766522),
        6: (2, 5 / 12, 0.055992, 0.766522),
        8: (1, 0.0, 0.0, 0.0),
    }
    assert set(by_time) == set(expected)
    for t, (at_risk, survival, lower, upper) in expected.items():
        step = by_time[t]
        assert step.at_risk == at_risk, t
        assert step.survival == pytest.approx(survival, abs=1e-6), t
        assert step.lower == pytest.approx(lower, abs=2e-6), t
        assert step.upper == pytest.approx(upper, abs=2e-6), t
    assert curve.median == 4
    assert [curve.at_risk(d) for d in (0, 3, 5, 9)] == [6, 5, 2, 0]
    assert (curve.patients, curve.events) == (6, 4)


def test_no_event_keeps_survival_at_one_and_no_median() -> None:
    curve = kaplan_meier([Observation(5, False), Observation(9, False)])
    assert all(s.survival == 1.0 and s.lower == 1.0 for s in curve.steps)
    assert curve.median is None


def test_an_event_at_day_zero_replaces_the_starting_step() -> None:
    curve = kaplan_meier([Observation(0, True), Observation(4, False)])
    assert curve.steps[0].time == 0 and curve.steps[0].survival == 0.5


def test_negative_times_are_refused() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        kaplan_meier([Observation(-1, True)])


def test_log_rank_by_hand() -> None:
    # Group A relapses at 1 and 3; group B at 2, censored at 4. Event times 1, 2, 3:
    #   t=1: n=4 (A 2), d=1 (A 1): E_A = 1*2/4 = 0.5; V = 1*(2/4)*(2/4)*(3/3) = 0.25
    #   t=2: n=3 (A 1), d=1 (B):   E_A = 1/3;        V = (1/3)*(2/3)*(2/2) = 0.222222
    #   t=3: n=2 (A 1), d=1 (A 1): E_A = 1/2;        V = (1/2)*(1/2)*(1/1) = 0.25
    #   O_A = 2, E_A = 1.333333, V = 0.722222: chi2 = 0.666667^2 / 0.722222 = 0.615385; p = 0.432768
    result = log_rank([Observation(1, True), Observation(3, True)], [Observation(2, True), Observation(4, False)])
    assert result is not None
    assert result.chi_square == pytest.approx(0.615385, abs=1e-6)
    assert result.p_value == pytest.approx(0.432768, abs=1e-6)
    assert result.observed == (2, 1)
    assert log_rank([Observation(3, False)], [Observation(4, False)]) is None
    assert math.isclose(sum(result.expected), 3)
