"""What the plan's progress note says (service/plan_status/progress_note.py): the status and phase first, the open
reasons in the engine's words, urgent first, and a closed urgent finding with who closed it."""

from __future__ import annotations

from service.plan_status import IV_KETAMINE_CBT, PlanStatus, compute_plan_status
from service.plan_status.progress_note import STATUS_WORDS, progress_note_lines
from service.record_fhir import REASON_WORDS

from .builders import Records, ack, at, enrollment, iv_course, phq

COURSE = iv_course()


def status(records: Records, day: float) -> PlanStatus:
    return compute_plan_status(
        enrollment(), records.sessions, records.cbt, records.measurements, IV_KETAMINE_CBT, records.acks, at(day)
    )


def test_an_open_item_9_finding_leads_the_note_after_the_status() -> None:
    result = status(COURSE.replacing(phq("m3", 3, 17, item9=True)), 3.5)
    lines = progress_note_lines(result, REASON_WORDS)
    assert lines[0] == "Plan status: At risk. Phase: induction."
    assert lines[1].startswith("Course: ") and "induction sessions" in lines[1]
    [urgent] = [line for line in lines if line.startswith("Urgent: ")]
    assert "PHQ-9 item 9" in urgent and "suicide-risk pathway" in urgent
    first_other = next((i for i, line in enumerate(lines) if line.startswith("Needs attention: ")), len(lines))
    assert lines.index(urgent) < first_other
    assert lines[-1].startswith("Written by Tandem")
    assert (
        progress_note_lines(status(COURSE.replacing(phq("m3", 3, 17, item9=True)), 3.9), REASON_WORDS) == lines
    )  # not the clock


def test_an_acknowledged_finding_is_told_closed_and_no_longer_urgent() -> None:
    records = COURSE.replacing(phq("m3", 3, 17, item9=True)).plus(ack("phq9_item9_positive", "m3", 4))
    lines = progress_note_lines(status(records, 5), REASON_WORDS)
    assert not any(line.startswith("Urgent: ") for line in lines)
    [closed] = [line for line in lines if "PHQ-9 item 9" in line]
    assert "Closed: acknowledged by prac-7" in closed
    assert "At risk" not in lines[0]


def test_every_status_has_words() -> None:
    assert set(STATUS_WORDS) == set(PlanStatus.model_fields["status"].annotation.__args__)  # type: ignore[union-attr]
