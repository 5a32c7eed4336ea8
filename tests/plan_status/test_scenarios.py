"""The scenario library: each timeline, at each instant, gives the status a coordinator should see."""

from __future__ import annotations

import pytest

from service.plan_status import PlanStatus, compute_plan_status

from .builders import at, enrollment
from .scenarios import SCENARIOS, Check, Scenario

CASES = [(s, c) for s in SCENARIOS for c in s.checks]


def run(scenario: Scenario, day: float) -> PlanStatus:
    r = scenario.records
    return compute_plan_status(
        enrollment(**scenario.enrollment), r.sessions, r.cbt, r.measurements, scenario.protocol, r.acks, at(day)
    )


def test_library_is_big_enough() -> None:
    assert len(SCENARIOS) >= 25


@pytest.mark.parametrize(("scenario", "expected"), CASES, ids=[f"{s.name} @ day {c.day:g}" for s, c in CASES])
def test_scenario(scenario: Scenario, expected: Check) -> None:
    result = run(scenario, expected.day)
    open_codes = {r.code for r in result.reasons if r.open and r.severity != "info"}
    closed_codes = {r.code for r in result.reasons if not r.open}
    notes = {r.code for r in result.reasons if r.severity == "info"}
    messages = "\n".join(f"{r.code}: {r.message}" for r in result.reasons)
    assert (result.status, result.phase) == (expected.status, expected.phase), messages
    assert open_codes == expected.open, messages
    assert closed_codes == expected.closed, messages
    assert expected.notes <= notes, messages
    # An open urgent reason ends with what to do next; a closed one says who closed it and when, and asks nothing.
    for reason in result.reasons:
        if reason.open and reason.severity == "urgent":
            assert reason.next_step and reason.message.endswith(f" — {reason.next_step}."), reason.message
        if not reason.open:
            assert reason.next_step is None and ". Closed: acknowledged by " in reason.message, reason.message
            assert " — " not in reason.message or reason.severity != "urgent", reason.message
    primary = result.outcomes[0]
    for name, value in expected.outcome.items():
        assert getattr(primary, name) == value, name
