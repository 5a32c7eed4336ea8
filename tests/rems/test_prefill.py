"""The REMS form's prefill as a pure function (service/rems/form.py): which reading is which check, doses, names,
the monitoring time, and nothing guessed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.rems.form import MISSING, AdverseEvent, FormInputs, Reading, prefill

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _inputs(**overrides: Any) -> FormInputs:
    values: dict[str, Any] = {
        "given_names": ("Ana", "Maria"),
        "family_name": "Lopes",
        "birth_date": date(1980, 5, 17),
        "sex": "female",
        "started_at": START,
        "ended_at": START + timedelta(minutes=10),
        "dose_mg": 56.0,
        "lot_number": "L1",
        "observation_minutes": 120,
        "sedation_score": None,
        "dissociation_score": None,
        "readings": (),
        "adverse_events": (),
        "earlier_esketamine_sessions": 0,
        "monitoring_hcp": None,
        "setting_name": "Oslo clinic",
        "zone": ZoneInfo("Europe/Oslo"),
    }
    return FormInputs(**{**values, **overrides})


def _bp(minutes: int, systolic: int) -> Reading:
    return Reading(START + timedelta(minutes=minutes), systolic, 80)


def test_each_blood_pressure_check_takes_its_reading() -> None:
    readings = (_bp(-30, 120), _bp(-5, 125), _bp(20, 150), _bp(38, 140), _bp(44, 142), _bp(70, 135), _bp(115, 130))
    form = prefill(_inputs(readings=readings))
    assert form.get("bp_before").value == "125/80 mmHg"  # the last before the first device
    assert form.get("bp_40_min").value == "140/80 mmHg"  # the nearest to 40 min (38 beats 44)
    assert form.get("bp_end").value == "130/80 mmHg"  # the last after the 40-minute check
    assert form.get("bp_before").note == "taken 09:55 CET"  # 08:55 UTC, in the hospital's zone


def test_a_reading_outside_the_40_minute_margin_is_not_the_40_minute_check() -> None:
    form = prefill(_inputs(readings=(_bp(-5, 125), _bp(20, 150), _bp(60, 135))))
    assert form.get("bp_40_min").value is None and form.get("bp_40_min").shown == MISSING
    assert form.get("bp_end").value == "135/80 mmHg"


def test_doses_names_and_the_monitoring_time() -> None:
    form = prefill(_inputs(dose_mg=28.0, observation_minutes=100, ended_at=None))
    assert form.get("dose").value == "Other: 28 mg"
    assert form.get("middle_initial").value == "M" and form.get("first_name").value == "Ana"
    assert form.get("birthdate").value == "05/17/1980" and form.get("sex").value == "Female"
    assert form.get("total_minutes").value == "100"
    assert "below the 120-minute minimum" in (form.get("total_minutes").note or "")
    assert form.get("treatment_date").value == "11/30/2026" and form.get("first_device_at").value == "10:00 CET"
    assert form.due_by == START + timedelta(days=7)
    unrecorded = prefill(_inputs(observation_minutes=None, dose_mg=None, sex="unknown", given_names=()))
    for key in ("total_minutes", "dose", "sex", "first_name", "middle_initial"):
        assert unrecorded.get(key).value is None, key


def test_effects_are_answered_only_when_a_recorded_score_says_so() -> None:
    sedated = prefill(_inputs(sedation_score=2, dissociation_score=9))
    assert sedated.get("sedation").value == "Yes (MOAA/S 2 recorded)"
    assert sedated.get("dissociation").value == "Yes (CADSS 9 recorded)"
    alert = prefill(_inputs(sedation_score=5, dissociation_score=0))
    assert alert.get("sedation").value is None and alert.get("dissociation").value is None
    events = prefill(_inputs(adverse_events=(AdverseEvent("vomiting", True),)))
    assert events.get("adverse_events").value == "vomiting (serious)"
    assert prefill(_inputs()).get("adverse_events").value is None


def test_nothing_tandem_does_not_hold_is_filled_in() -> None:
    form = prefill(_inputs(earlier_esketamine_sessions=3, monitoring_hcp=("Tola", "Adeyemi")))
    assert form.get("first_treatment").value == "No"
    assert (form.get("hcp_first_name").value, form.get("hcp_last_name").value) == ("Tola", "Adeyemi")
    never = ("rems_enrolled", "hcp_telephone", "setting_address", "ready_to_leave", "vitals_ok_before",
             "respiratory_depression", "resolved", "med_opioids")  # fmt: skip
    assert all(form.get(key).value is None for key in never)
    assert {f.key for f in form.missing} >= set(never)
