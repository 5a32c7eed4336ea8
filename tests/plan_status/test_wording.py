"""The words of every urgent and warning reason, one by one: what happened, when (the local date) and the next
action in the clinic's words (CLINICAL.md section 5), and how a closed reason reads."""

# ruff: noqa: E501 - each message is one line here, to read as the coordinator reads it

from __future__ import annotations

import pytest

from service.plan_status import IV_KETAMINE_CBT, compute_plan_status

from .builders import ack, at, cssrs, enrollment, iv_course
from .scenarios import SCENARIOS
from .test_scenarios import run

# Code: (scenario, day, the reason's message there). Reason codes are published (tests/test_reason_codes.py);
# the words are ours to improve, and each change shows here.
WORDING: dict[str, tuple[str, float, str]] = {
    "baseline_missing": (
        "baseline missing",
        1,
        "No PHQ-9 was recorded in the 14 days before the first infusion on 5 Oct 2026, so there is no starting score and whether treatment helps cannot be measured — note this in the plan.",
    ),
    "baseline_too_old": (
        "baseline too old",
        1,
        "The last PHQ-9 before the first infusion on 5 Oct 2026 was taken on 15 Sep 2026, more than 14 days earlier, so it cannot serve as the starting score and whether treatment helps cannot be measured — note this in the plan.",
    ),
    "bp_predose_warning": (
        "pre-dose blood pressure 150/95 is a warning superseded by the next session",
        7.5,
        "Blood pressure before dosing was 150/95 mmHg at the infusion on 12 Oct 2026 (above 140/90) — check it is controlled before the next dose.",
    ),
    "bp_urgent": (
        "blood pressure 185/112 at a session stays open until acknowledged",
        7.5,
        "Blood pressure 185/112 mmHg at the infusion on 12 Oct 2026 (urgent level 180/110) — a physician reviews the patient before the next dose; recheck before discharge until below 140/90.",
    ),
    "cbt_no_show_streak": (
        "two CBT no-shows in a row",
        16.5,
        "2 CBT sessions in a row were missed: 14 Oct 2026 (no show), 21 Oct 2026 (cancelled) — call the patient to re-engage.",
    ),
    "cbt_not_started": (
        "CBT not started a week after the first infusion",
        10.5,
        "CBT has not started: the first session was due by 12 Oct 2026, within 7 days of the first infusion on 5 Oct 2026 — book the first CBT session.",
    ),
    "cbt_overdue": (
        "two CBT no-shows in a row",
        16.5,
        "CBT session 2 was due by 14 Oct 2026 (last attended 7 Oct 2026) and has not taken place — contact the patient and the therapist to rebook.",
    ),
    "cssrs_high_risk": (
        "C-SSRS high risk",
        5.5,
        "C-SSRS screener on 10 Oct 2026 shows high suicide risk (suicidal intent (Q4)) — contact the patient today and follow the suicide-risk pathway (structured risk assessment, safety plan).",
    ),
    "esketamine_observation_short": (
        "esketamine observed only 90 minutes",
        7.5,
        "The patient was observed for only 90 minutes at the esketamine session on 12 Oct 2026 (at least 120 required) — check on the patient and review with the clinic.",
    ),
    "induction_window_exceeded": (
        "missed infusion after the second",
        24.5,
        "Only 2 of 6 induction infusions were completed by 26 Oct 2026, 21 days after the first — review the plan with the prescriber.",
    ),
    "ketamine_overdue": (
        "missed infusion after the second",
        10.5,
        "The next induction infusion was due by 12 Oct 2026 (last one 8 Oct 2026) and has not been given — contact the patient to rebook.",
    ),
    "measurement_overdue": (
        "missed infusion after the second",
        14.5,
        "A PHQ-9 was due by 15 Oct 2026 (every 7 days; last on 8 Oct 2026) and has not been completed — send the questionnaire.",
    ),
    "non_response": (
        "non-response after induction",
        25,
        "PHQ-9 was 16 on 29 Oct 2026, the first score after the induction, against 20 before treatment: it has not fallen by half, so the induction has not worked as hoped — review the plan with the prescriber.",
    ),
    "oversedation": (
        "deep sedation and a serious adverse event",
        3.5,
        "Deep sedation (MOAA/S 1) at the infusion on 8 Oct 2026 — make sure the prescriber has reviewed the dose.",
    ),
    "phq9_item9_positive": (
        "PHQ-9 item 9 positive, acknowledged, positive again",
        3.5,
        "PHQ-9 item 9 (thoughts of self-harm) answered 'several days' on 8 Oct 2026 — assess the patient before dosing that day and follow the suicide-risk pathway (structured risk assessment, safety plan).",
    ),
    "relapse": (
        "relapse after response, acknowledged, then response regained",
        32,
        "PHQ-9 had fallen by half but has been back above half of the score before treatment (20) since 29 Oct 2026 (11, then 13 on 5 Nov 2026): possible relapse — review the plan with the prescriber.",
    ),
    "rems_form_overdue": (
        "esketamine REMS form overdue, then submitted late",
        10.1,
        "The Spravato REMS monitoring form for the session on 8 Oct 2026 was due by 15 Oct 2026 and has not been submitted — ask the clinic to submit it.",
    ),
    "serious_adverse_event": (
        "deep sedation and a serious adverse event",
        10.5,
        "Serious adverse event at the infusion on 15 Oct 2026: laryngospasm — confirm it has been reviewed and reported.",
    ),
    "worsening": (
        "worsening between two scores",
        10.5,
        "PHQ-9 rose from 12 on 12 Oct 2026 to 18 on 15 Oct 2026 — check in with the patient this week.",
    ),
}


@pytest.mark.parametrize("code", sorted(WORDING))
def test_each_reason_says_what_happened_when_and_what_to_do(code: str) -> None:
    name, day, expected = WORDING[code]
    [scenario] = [s for s in SCENARIOS if s.name == name]
    [reason] = [r for r in run(scenario, day).reasons if r.code == code and r.open]
    assert reason.message == expected
    assert reason.what_happened is not None and expected.startswith(reason.what_happened)


def test_every_urgent_and_warning_code_of_the_scenarios_has_its_wording_here() -> None:
    emitted = {r.code for s in SCENARIOS for c in s.checks for r in run(s, c.day).reasons if r.severity != "info"}
    assert emitted == set(WORDING)


@pytest.mark.parametrize("jargon", ["above the response level", "counts as response", "baseline of", "response cannot"])
def test_no_reason_speaks_jargon(jargon: str) -> None:
    assert all(jargon not in message for _, _, message in WORDING.values())


def test_a_positive_cssrs_on_an_infusion_day_asks_for_assessment_before_dosing() -> None:
    records = iv_course().plus(cssrs("c3", 3 - 1 / 24))  # the morning of the second infusion
    result = compute_plan_status(
        enrollment(), records.sessions, records.cbt, records.measurements, IV_KETAMINE_CBT, (), at(3, 2)
    )
    [reason] = [r for r in result.open_reasons if r.code == "cssrs_high_risk"]
    assert reason.next_step == (
        "assess the patient before dosing that day and follow the suicide-risk pathway (structured risk "
        "assessment, safety plan)"
    )


@pytest.mark.parametrize("code", sorted(c for c, (_, _, m) in WORDING.items() if " — " in m))
def test_a_closed_reason_drops_its_call_to_action_and_says_who_closed_it_and_when(code: str) -> None:
    name, day, _ = WORDING[code]
    [scenario] = [s for s in SCENARIOS if s.name == name]
    [opened] = [r for r in run(scenario, day).reasons if r.code == code and r.open]
    records = scenario.records.plus(ack(code, opened.occurrence_id, day + 0.01))
    result = compute_plan_status(
        enrollment(**scenario.enrollment),
        records.sessions,
        records.cbt,
        records.measurements,
        scenario.protocol,
        records.acks,
        at(day + 0.02),
    )
    [closed] = [r for r in result.reasons if r.code == code and r.occurrence_id == opened.occurrence_id]
    assert not closed.open and closed.next_step is None
    assert closed.what_happened == opened.what_happened
    assert closed.message.endswith(f"Closed: acknowledged by prac-7 on {at(day + 0.01):%-d %b %Y}.")
    if opened.next_step is not None:
        assert opened.next_step not in closed.message
