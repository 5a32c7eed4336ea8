"""GET /api/v1/outcomes on a seeded synthetic programme: the planted CBT effect is found with the right counts, a
seed without one shows overlapping curves, small cells are suppressed, bad filters are refused. Both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.outcomes.suppression import partition
from tests.builders import API
from tests.outcomes.programme import Loaded, responders

EVERYTHING = {"period_start": "2020-01-01"}


def outcomes(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = client.get(f"{API}/outcomes", params={**EVERYTHING, **params}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def group(report: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(g for g in report["durability"]["groups"] if g["group"] == key)
    return found


def test_the_planted_cbt_effect_is_reported_with_the_right_counts(
    client: TestClient, raw: TestClient, auth: Callable[..., dict[str, str]], planted_effect: Loaded
) -> None:
    headers = auth(planted_effect.tenant_id)
    report, every_count = outcomes(client, headers), outcomes(raw, headers)
    planted = planted_effect.planted
    assert report["cohort"]["enrolled"] == {"value": 40, "suppressed": False, "reason": None}
    for adherent, key in ((True, "adherent"), (False, "less_adherent")):
        mine = responders(planted, adherent)
        relapsed = sum(p.relapse_in_records for p in mine)
        g = group(every_count, key)
        assert (g["patients"]["value"], g["relapsed"]["value"]) == (len(mine), relapsed), key
        assert g["censored"]["value"] == len(mine) - relapsed, key
        # With the default cell size, what is shown is what the suppression rule allows of those counts.
        total, parts = partition(len(mine), {"relapsed": relapsed, "censored": len(mine) - relapsed}, 11)
        shown = group(report, key)
        assert (shown["patients"], shown["relapsed"], shown["censored"]) == (
            total.model_dump(),
            parts["relapsed"].model_dump(),
            parts["censored"].model_dump(),
        )
        assert shown["curve"] and shown["curve"][0]["survival"] == 1.0
        assert all(p["lower"] <= p["survival"] <= p["upper"] for p in shown["curve"])
        assert all(a["patients"]["value"] is None or a["patients"]["value"] >= 11 for a in shown["at_risk"])
    adherent_curve, less = group(every_count, "adherent"), group(every_count, "less_adherent")
    # The adherent patients' response lasts longer: the curves part and the test says so.
    assert less["median_days"] is not None
    assert adherent_curve["median_days"] is None or adherent_curve["median_days"] > less["median_days"]
    assert report["durability"]["log_rank"]["p_value"] < 0.01
    assert report["durability"]["responders"]["value"] == sum(p.responder for p in planted)


def _expected_milestone(planted: list[Any], day: int) -> tuple[int, int]:
    responded = remitted = 0
    for p in planted:
        score = dict(p.scores).get(day)
        if score is None:
            continue
        responded += (p.baseline - score) / p.baseline >= 0.5
        remitted += score < 5
    return responded, remitted


@pytest.mark.parametrize("week", [4, 12])
def test_response_and_remission_at_a_week_count_every_patient(
    raw: TestClient, auth: Callable[..., dict[str, str]], planted_effect: Loaded, week: int
) -> None:
    report = outcomes(raw, auth(planted_effect.tenant_id))
    milestone = next(m for m in report["milestones"] if m["key"] == f"week_{week}")
    responded, remitted = _expected_milestone(planted_effect.planted, 7 * week)
    assert milestone["due"]["value"] == 40
    assert (milestone["measured"]["value"], milestone["missing"]["value"]) == (40, 0)
    assert milestone["response"]["numerator"]["value"] == responded
    assert milestone["response"]["rate"] == pytest.approx(responded / 40)
    assert milestone["remission"]["numerator"]["value"] == remitted
    assert 0 < remitted < responded < 40  # the example holds some of each


def test_a_cell_of_three_is_suppressed_and_cannot_be_backed_out(
    client: TestClient, auth: Callable[..., dict[str, str]], planted_effect: Loaded
) -> None:
    assert sum(p.skipped_week_8 for p in planted_effect.planted) == 3
    report = outcomes(client, auth(planted_effect.tenant_id))
    week_8 = next(m for m in report["milestones"] if m["key"] == "week_8")
    assert week_8["due"] == {"value": 40, "suppressed": False, "reason": None}
    assert week_8["missing"] == {"value": None, "suppressed": True, "reason": "small"}
    # 40 - measured would give the 3 away: measured is hidden too.
    assert week_8["measured"] == {"value": None, "suppressed": True, "reason": "complementary"}
    assert "< 11" in " ".join(report["caveats"]) or "fewer than 11" in " ".join(report["caveats"])


def test_without_an_effect_the_curves_overlap(
    raw: TestClient, auth: Callable[..., dict[str, str]], no_effect: Loaded
) -> None:
    # Every step shown (cell size 1): with the default the curves stop where fewer than 11 are still followed.
    report = outcomes(raw, auth(no_effect.tenant_id))
    adherent, less = group(report, "adherent"), group(report, "less_adherent")
    assert not adherent["suppressed"] and not less["suppressed"]
    assert report["durability"]["log_rank"]["p_value"] > 0.2
    # At every 4-week mark both curves reach, the 95 % bands overlap (before a group's first relapse its band is the
    # single point 1.0, which says nothing about overlap: those marks are skipped).
    compared = 0
    for day in range(28, 400, 28):
        a, b = _in_force(adherent["curve"], day), _in_force(less["curve"], day)
        if a is None or b is None or 1.0 in (a["survival"], b["survival"]):
            continue
        assert a["lower"] <= b["upper"] and b["lower"] <= a["upper"], day
        compared += 1
    assert compared >= 3


def _in_force(curve: list[dict[str, Any]], day: float) -> dict[str, Any] | None:
    if day > curve[-1]["day"]:
        return None
    return [p for p in curve if p["day"] <= day][-1]


def test_a_small_filter_suppresses_everything_small(
    client: TestClient, auth: Callable[..., dict[str, str]], planted_effect: Loaded
) -> None:
    report = outcomes(client, auth(planted_effect.tenant_id), protocol="esketamine-cbt")
    assert report["cohort"]["enrolled"] == {"value": None, "suppressed": True, "reason": "small"}
    assert all(g["suppressed"] and g["curve"] == [] for g in report["durability"]["groups"])
    assert report["rems"]["suppressed"] and report["rems"]["sessions"] is None
    assert report["durability"]["log_rank"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period_start": "2026-05-01", "period_end": "2026-04-01"}, "query.period_start"),
        ({"period_start": "2000-01-01", "period_end": "2026-01-01"}, "query.period_end"),
        ({"protocol": "no-such-protocol"}, "query.protocol"),
        ({"site": "another-hospital"}, "query.site"),
        ({"therapist": "no-such-therapist"}, "query.therapist"),
        ({"period_start": "yesterday"}, "query.period_start"),
    ],
)
def test_bad_filters_are_refused_as_problem_json(
    client: TestClient, auth: Callable[..., dict[str, str]], tenant: str, params: dict[str, str], field: str
) -> None:
    response = client.get(f"{API}/outcomes", params=params, headers=auth(tenant))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in response.json()["errors"]}


def test_only_admins_and_clinicians_read_outcomes(
    client: TestClient, auth: Callable[..., dict[str, str]], tenant: str
) -> None:
    assert client.get(f"{API}/outcomes", headers=auth(tenant, "admin")).status_code == 200
    for role in ("coordinator", "ehr-system"):
        assert client.get(f"{API}/outcomes", headers=auth(tenant, role)).status_code == 403, role
        assert client.get(f"{API}/outcomes.csv", headers=auth(tenant, role)).status_code == 403, role
