"""Targeted behaviour of compute_plan_status: messages, counts, due dates, late records, protocol choice."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from service.plan_status import IV_KETAMINE_CBT, PlanStatus, compute_plan_status

from .builders import Records, ack, at, cbt, enrollment, iv_course, phq, session
from .scenarios import IV_V2

COURSE = iv_course()


def status(records: Records, day: float, **kw: object) -> PlanStatus:
    protocol = kw.pop("protocol", IV_KETAMINE_CBT)
    return compute_plan_status(
        enrollment(**kw),  # type: ignore[arg-type]
        records.sessions,
        records.cbt,
        records.measurements,
        protocol,  # type: ignore[arg-type]
        records.acks,
        at(day),
    )


def test_item9_message_names_answer_and_date_and_action() -> None:
    result = status(COURSE.replacing(phq("m3", 3, 17, item9=True)), 3.5)
    reason = result.open_reasons[0]
    assert reason.message == (
        "PHQ-9 item 9 (thoughts of self-harm) answered 'several days' on 8 Oct 2026 — assess the patient before "
        "dosing that day and follow the suicide-risk pathway (structured risk assessment, safety plan)."
    )  # the pre-dose PHQ-9 of the infusion on day 3 (CLINICAL.md section 5)
    assert (reason.occurrence_id, reason.record_ids, reason.since) == ("m3", ("m3",), at(3, -1))
    assert reason.needs_acknowledgement and reason.acknowledgement is None


def test_item9_between_infusions_asks_for_contact_today() -> None:
    result = status(COURSE.plus(phq("m5", 5, 15, item9=True)), 5.5)
    [reason] = [r for r in result.open_reasons if r.code == "phq9_item9_positive"]
    assert reason.message.endswith(
        "on 10 Oct 2026 — contact the patient today and follow the suicide-risk pathway (structured risk "
        "assessment, safety plan)."
    )


def test_acknowledgement_is_attached_to_the_reason() -> None:
    records = COURSE.replacing(phq("m3", 3, 17, item9=True)).plus(ack("phq9_item9_positive", "m3", 4))
    reason = status(records, 5).reasons[0]
    assert not reason.open
    assert reason.acknowledgement is not None and reason.acknowledgement.by == "prac-7"


def test_a_closed_reason_reads_as_closed_with_who_and_when() -> None:
    crisis = COURSE.replacing(phq("m3", 3, 17, item9=True))
    [opened] = [r for r in status(crisis, 3.5).reasons if r.code == "phq9_item9_positive"]
    assert opened.next_step is not None and opened.next_step.startswith("assess the patient before dosing")
    assert opened.message.endswith(f" — {opened.next_step}.")
    [closed] = [r for r in status(crisis.plus(ack("phq9_item9_positive", "m3", 4)), 5).reasons if not r.open]
    # What happened stays; the action ("assess … before dosing") is gone: nobody is told to act on a closed flag.
    assert closed.message == (
        "PHQ-9 item 9 (thoughts of self-harm) answered 'several days' on 8 Oct 2026. "
        "Closed: acknowledged by prac-7 on 9 Oct 2026."
    )
    assert closed.next_step is None


def test_acknowledgement_of_another_record_does_not_close() -> None:
    records = COURSE.replacing(phq("m3", 3, 17, item9=True)).plus(ack("phq9_item9_positive", "m7", 4))
    assert status(records, 5).status == "at_risk"


def test_acknowledgement_in_the_future_of_as_of_is_ignored() -> None:
    records = COURSE.replacing(phq("m3", 3, 17, item9=True)).plus(ack("phq9_item9_positive", "m3", 4))
    result = status(records, 3.5)
    assert result.status == "at_risk"
    assert result.next_recompute_at == at(4)


def test_blood_pressure_message_gives_the_reading() -> None:
    result = status(COURSE.replacing(session(3, 7, bp=(185, 112))), 7.5)
    assert result.open_reasons[0].message == (
        "Blood pressure 185/112 mmHg at the infusion on 12 Oct 2026 (urgent level 180/110) — a physician reviews "
        "the patient before the next dose; recheck before discharge until below 140/90."
    )


def test_messages_use_the_hospital_timezone() -> None:
    late = COURSE.replacing(phq("m3", 3, 17, item9=True, hours=14.5))  # 8 Oct 23:30 UTC = 9 Oct in Sydney
    records = late.without("k3", "k4", "k5", "k6")
    result = compute_plan_status(
        enrollment(),
        records.sessions,
        records.cbt,
        records.measurements,
        IV_KETAMINE_CBT,
        (),
        at(4),
        tz=ZoneInfo("Australia/Sydney"),
    )
    assert "on 9 Oct 2026" in result.reasons[0].message


def test_counts_and_last_contact_mid_course() -> None:
    result = status(COURSE, 30)
    assert result.counts.ketamine_induction.model_dump() == {"done": 6, "expected": 6}
    assert result.counts.cbt.model_dump() == {"done": 4, "expected": 12}  # days 2, 9, 16, 23; day 30 is at 14:00
    # Baseline, 5 pre-dose, one weekly slot since the induction ended on day 17 (filled by day 24).
    assert result.counts.measurements.model_dump() == {"done": 7, "expected": 7}
    assert result.last_contact is not None and result.last_contact.record_id == "m24"
    assert result.weeks_in_treatment == 5


def test_next_due_during_induction() -> None:
    result = status(COURSE, 4)
    ketamine = result.next_due.ketamine_session
    assert ketamine is not None
    assert (ketamine.earliest_at, ketamine.due_at, ketamine.overdue_from) == (at(5), at(7), at(10))
    assert ketamine.after_record_id == "k2" and not ketamine.overdue
    cbt_due = result.next_due.cbt_session
    assert cbt_due is not None and cbt_due.due_at == at(9, 5)
    measurement = result.next_due.measurement
    assert measurement is not None and measurement.due_at == at(7)
    assert result.next_due.rems_form is None


def test_next_recompute_at_is_the_next_deadline() -> None:
    records = COURSE.without("k3", "k4", "k5", "k6", "m7", "m10", "m14", "m17", "m24").replacing(
        *(cbt(n, d, "planned") for n, d in ((2, 9), (3, 16)))
    )
    result = status(Records(sessions=records.sessions, measurements=records.measurements), 9)
    assert result.next_recompute_at == at(10)  # ketamine overdue and CBT not started, both from day 10
    assert status(Records(sessions=records.sessions, measurements=records.measurements), 10).status == (
        "needs_attention"
    )


def test_back_dated_score_changes_later_results_only() -> None:
    # Recorded on day 33 but authored on day 31: computations for day 30 are unaffected.
    late = phq("m-late", 31, 16)
    before, after = COURSE.without("m31"), COURSE.without("m31").plus(late)
    unaware = {"next_recompute_at": None}
    assert status(before, 30).model_copy(update=unaware) == status(after, 30).model_copy(update=unaware)
    assert "worsening" in {r.code for r in status(after, 33).open_reasons}
    assert "worsening" not in {r.code for r in status(before, 33).open_reasons}


def test_protocol_with_another_id_is_refused() -> None:
    with pytest.raises(ValueError, match="follows protocol 'esketamine-cbt'"):
        status(COURSE, 5, protocol_id="esketamine-cbt")


def test_the_engine_applies_the_protocol_it_is_given() -> None:
    assert status(COURSE, 18, version="2", protocol=IV_V2).phase == "induction"
    assert status(COURSE, 18).phase == "consolidation"


def test_records_must_have_unique_ids() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        status(COURSE.plus(phq("m3", 5, 10)), 6)


def test_json_shape() -> None:
    result = status(COURSE.replacing(phq("m3", 3, 17, item9=True)), 18)
    data = json.loads(result.model_dump_json())
    assert set(data) == {
        "enrollment_id",
        "patient_id",
        "protocol_id",
        "protocol_version",
        "as_of",
        "status",
        "phase",
        "weeks_in_treatment",
        "counts",
        "outcomes",
        "reasons",
        "next_due",
        "last_contact",
        "next_recompute_at",
        "enrollment_status",
    }
    assert set(data["reasons"][0]) == {
        "code",
        "severity",
        "message",
        "next_step",
        "what_happened",
        "occurrence_id",
        "record_ids",
        "since",
        "needs_acknowledgement",
        "acknowledgement",
        "open",
    }
    assert PlanStatus.model_validate_json(result.model_dump_json()) == result


def test_records_after_as_of_only_move_next_recompute() -> None:
    base = status(COURSE.without("m24"), 20)
    with_future = status(COURSE, 20)
    assert base.model_copy(update={"next_recompute_at": None}) == with_future.model_copy(
        update={"next_recompute_at": None}
    )
    assert with_future.next_recompute_at is not None and with_future.next_recompute_at <= at(24) + timedelta(0)


@pytest.mark.parametrize(
    ("state", "quiet"), [("on-hold", "on_hold"), ("completed", "completed"), ("discontinued", "discontinued")]
)
def test_an_open_urgent_finding_is_never_hidden_by_the_enrollment_state(state: str, quiet: str) -> None:
    """CLINICAL.md section 4: at risk whatever the enrollment state; the state is kept beside it."""
    crisis = COURSE.replacing(phq("m3", 3, 17, item9=True))
    held = status(crisis, 5, status=state, status_reason="crisis admission")
    assert held.status == "at_risk"
    assert held.enrollment_status == state
    assert [r.code for r in held.open_reasons if r.severity == "urgent"] == ["phq9_item9_positive"]
    # Once a clinician acknowledges the finding, the enrollment's state shows again.
    acknowledged = status(crisis.plus(ack("phq9_item9_positive", "m3", 4)), 5, status=state)
    assert acknowledged.status == quiet
    # Without an urgent finding, warnings do not outrank the enrollment's state.
    assert status(COURSE, 40, status=state).status == quiet


def test_an_overdue_measurement_names_every_slot_missed_since() -> None:
    gap = COURSE.without(*(m.id for m in COURSE.measurements if m.authored_at > at(24)))
    measurement = status(gap, 78).next_due.measurement
    assert measurement is not None and measurement.overdue
    # Weekly during CBT: due 7 days after the PHQ-9 of day 24, then every week up to day 78 — seven missed.
    assert measurement.missed == tuple(at(d, -1) for d in (31, 38, 45, 52, 59, 66, 73))
    on_time = status(COURSE, 30).next_due.measurement
    assert on_time is not None and not on_time.overdue and on_time.missed == ()
