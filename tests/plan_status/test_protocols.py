"""Protocols are data: built-ins are valid, bad ones are refused with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from service.plan_status import BUILT_IN_PROTOCOLS, ESKETAMINE_CBT, IV_KETAMINE_CBT, Protocol


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**IV_KETAMINE_CBT.model_dump(), **changes}


def test_built_ins() -> None:
    assert set(BUILT_IN_PROTOCOLS) == {("iv-ketamine-cbt", "1"), ("esketamine-cbt", "1")}
    assert (IV_KETAMINE_CBT.induction_sessions, IV_KETAMINE_CBT.induction_window_days) == (6, 21)
    assert ESKETAMINE_CBT.safety.esketamine_min_observation_minutes == 120
    assert ESKETAMINE_CBT.safety.rems_form_days == 7
    assert [s.from_week for s in ESKETAMINE_CBT.maintenance_stages] == [5, 9]


def test_protocol_round_trips_as_json() -> None:
    assert Protocol.model_validate_json(ESKETAMINE_CBT.model_dump_json()) == ESKETAMINE_CBT


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"induction_sessions": 0}, "induction_sessions\n  Input should be greater than or equal to 1"),
        ({"cbt_sessions": 0}, "cbt_sessions\n  Input should be greater than or equal to 1"),
        ({"cbt_cadence_days": 0}, "cbt_cadence_days\n  Input should be greater than 0"),
        ({"grace_days": -1}, "grace_days\n  Input should be greater than or equal to 0"),
        (
            {"induction_cadence": {"sessions_per_week": 2, "min_days_between": 5, "max_days_between": 3}},
            "min_days_between 5 exceeds max_days_between 3",
        ),
        ({"induction_window_days": 7}, "6 induction sessions at least 2 days apart cannot fit in 7 days"),
        (
            {"safety": {"bp_urgent_systolic": 140, "bp_predose_systolic": 140}},
            "bp_urgent_systolic must be above bp_predose_systolic",
        ),
        ({"safety": {"max_sedation_score": 6}}, "max_sedation_score\n  Input should be less than or equal to 5"),
        ({"safety": {"dissociation_above": 93}}, "dissociation_above\n  Input should be less than or equal to 92"),
        ({"id": "Bad Id"}, "id\n  String should match pattern"),
        ({"drug": "psilocybin"}, "drug\n  Input should be 'ketamine' or 'esketamine'"),
        ({"cbt_start_rule": "whenever"}, "cbt_start_rule\n  Input should be 'with_induction' or 'after_response'"),
        (
            {
                "maintenance_stages": [
                    {"from_week": 9, "cadence": {"sessions_per_week": 1, "min_days_between": 5, "max_days_between": 7}},
                    {"from_week": 5, "cadence": {"sessions_per_week": 1, "min_days_between": 5, "max_days_between": 7}},
                ]
            },
            "maintenance_stages must have strictly increasing from_week",
        ),
        ({"measurements": {"baseline_max_age_days": 0}}, "baseline_max_age_days\n  Input should be greater than 0"),
        ({"unknown_setting": 1}, "unknown_setting\n  Extra inputs are not permitted"),
    ],
)
def test_bad_protocol_is_refused_with_the_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Protocol(**with_changes(**changes))
    assert reason in str(caught.value)


def test_every_number_is_configurable() -> None:
    custom = Protocol(**with_changes(version="tenant-a", grace_days=1, cbt_no_show_streak=3))
    assert (custom.grace_days, custom.cbt_no_show_streak) == (1, 3)
