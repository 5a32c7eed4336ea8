"""The outcomes' own survival arithmetic against lifelines (a dev-only dependency) on seeded random data."""

from __future__ import annotations

import random

import pytest

from service.outcomes.survival import Observation, kaplan_meier, log_rank

lifelines = pytest.importorskip("lifelines", reason="lifelines is a dev dependency (pip install -e '.[dev]')")
from lifelines.statistics import logrank_test  # noqa: E402


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kaplan_meier_and_bands_match_lifelines(seed: int) -> None:
    rng = random.Random(seed)
    obs = [Observation(float(rng.randint(0, 60)), rng.random() < 0.6) for _ in range(40)]
    ours = kaplan_meier(obs)
    fitter = lifelines.KaplanMeierFitter().fit([o.time for o in obs], [o.event for o in obs], alpha=0.05)
    survival = fitter.survival_function_.iloc[:, 0]
    bands = fitter.confidence_interval_survival_function_
    for step in ours.steps:
        assert step.survival == pytest.approx(float(survival.loc[step.time]), abs=1e-9)
        low, high = (float(v) for v in bands.loc[step.time])
        if 0 < step.survival < 1:
            assert step.lower == pytest.approx(min(low, high), abs=1e-9)
            assert step.upper == pytest.approx(max(low, high), abs=1e-9)
        table = fitter.event_table.loc[step.time]
        if step.events or step.censored:
            assert step.at_risk == int(table["at_risk"])
    median = fitter.median_survival_time_
    assert (ours.median if ours.median is not None else float("inf")) == pytest.approx(float(median))


@pytest.mark.parametrize("seed", [4, 5])
def test_log_rank_matches_lifelines(seed: int) -> None:
    rng = random.Random(seed)
    a = [Observation(float(rng.randint(1, 50)), rng.random() < 0.7) for _ in range(30)]
    b = [Observation(float(rng.randint(1, 80)), rng.random() < 0.5) for _ in range(25)]
    ours = log_rank(a, b)
    theirs = logrank_test([o.time for o in a], [o.time for o in b], [o.event for o in a], [o.event for o in b])
    assert ours is not None
    assert ours.chi_square == pytest.approx(theirs.test_statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(theirs.p_value, rel=1e-9)
