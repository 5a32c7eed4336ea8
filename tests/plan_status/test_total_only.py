"""A total-only PHQ-9 (an EHR flowsheet row): it counts for every outcome, and its unknown item 9 is said in plain
words until an itemised PHQ-9 or a C-SSRS covers it (CLINICAL.md section 2)."""

from __future__ import annotations

from dataclasses import replace

from service.plan_status import IV_KETAMINE_CBT, PlanStatus, compute_plan_status

from .builders import Records, at, cssrs, enrollment, iv_course, phq

CODE = "phq9_item9_not_reported"


def _status(records: Records, day: float) -> PlanStatus:
    return compute_plan_status(
        enrollment(), records.sessions, records.cbt, records.measurements, IV_KETAMINE_CBT, records.acks, at(day)
    )


def _total_only(records: Records) -> Records:
    return replace(
        records, measurements=tuple(m.model_copy(update={"items_reported": False}) for m in records.measurements)
    )


def test_total_only_scores_give_the_same_outcomes_as_itemised_ones() -> None:
    itemised, totals = iv_course(), _total_only(iv_course())
    for day in (18, 40, 90):
        expected = _status(itemised, day).outcomes[0]
        assert _status(totals, day).outcomes[0] == expected
    outcome = _status(totals, 90).outcomes[0]
    assert outcome.baseline is not None and outcome.baseline.total == 20
    assert (outcome.in_response, outcome.in_remission, outcome.responded_at is not None) == (True, True, True)


def test_a_total_only_phq9_warns_that_item_9_was_not_reported() -> None:
    records = iv_course().plus(phq("flowsheet", 90, 4, items_reported=False))
    result = _status(records, 90.5)
    [reason] = [r for r in result.open_reasons if r.code == CODE]
    assert reason.severity == "warning" and not reason.needs_acknowledgement
    assert reason.message == (
        "PHQ-9 of 3 Jan 2027 sent as a total only: item 9 (thoughts of self-harm) was not reported — screen for "
        "suicidality at the next contact (an itemised PHQ-9 or a C-SSRS)."
    )
    assert reason.occurrence_id == "flowsheet"
    assert result.status == "needs_attention"
    assert "phq9_item9_positive" not in {r.code for r in result.reasons}  # unknown is not positive either


def test_a_later_itemised_phq9_or_a_same_day_cssrs_covers_it() -> None:
    records = iv_course().plus(phq("flowsheet", 90, 4, items_reported=False))
    assert CODE not in {r.code for r in _status(records.plus(phq("later", 95, 3)), 96).reasons}
    covered = records.plus(cssrs("screen", 90))
    assert CODE not in {r.code for r in _status(covered, 90.5).reasons}
    # An earlier C-SSRS does not screen a later PHQ-9.
    assert CODE in {r.code for r in _status(records.plus(cssrs("before", 80)), 90.5).reasons}


def test_an_itemised_phq9_never_warns() -> None:
    assert all(CODE not in {r.code for r in _status(iv_course(), day).reasons} for day in (18, 90))
