"""Appointments in the pure plan status: a booking is the next due date, a no-show counts once, a cancellation
frees the slot, a fulfilled appointment is the session unless the visit's own record of that day says so."""

from __future__ import annotations

from datetime import timedelta

from service.plan_status import IV_KETAMINE_CBT, AppointmentFacts, PlanStatus, compute_plan_status

from .builders import Records, at, cbt, enrollment, iv_course

# The IV course's infusions and questionnaires, without its CBT sessions: each test adds the CBT it is about.
COURSE = Records(sessions=iv_course().sessions, measurements=iv_course().measurements)


def booking(appointment_id: str, day: float, status: str = "booked", service: str = "cbt") -> AppointmentFacts:
    return AppointmentFacts.model_validate(
        {"id": appointment_id, "service": service, "status": status, "start": at(day), "recorded_at": at(1)}
    )


def status(records: Records, day: float, *appointments: AppointmentFacts) -> PlanStatus:
    return compute_plan_status(
        enrollment(),
        records.sessions,
        records.cbt,
        records.measurements,
        IV_KETAMINE_CBT,
        records.acks,
        at(day),
        appointments=appointments,
    )


def test_a_booking_after_the_last_cbt_session_is_the_next_cbt_due() -> None:
    records = COURSE.plus(cbt(1, 10))
    plain = status(records, 12).next_due.cbt_session
    assert plain is not None and plain.due_at.date() == at(17).date() and not plain.booked  # weekly cadence
    due = status(records, 12, booking("a1", 20)).next_due.cbt_session
    assert due is not None and (due.due_at, due.booked, due.after_record_id) == (at(20), True, "a1")
    assert not due.overdue  # booked: the protocol's due date on day 17 + grace no longer makes it overdue
    late = status(records, 23.5, booking("a1", 20)).next_due.cbt_session
    assert late is not None and late.overdue  # the booked time passed by the grace period with no session
    # A booking on or before the last attended session's day is history, not what is due.
    assert not status(records, 12, booking("old", 10)).next_due.cbt_session.booked  # type: ignore[union-attr]


def test_a_booking_made_after_as_of_is_not_known_then() -> None:
    late_booking = AppointmentFacts(id="a1", service="cbt", status="booked", start=at(20), recorded_at=at(15))
    before = status(COURSE.plus(cbt(1, 10)), 12, late_booking).next_due.cbt_session
    assert before is not None and not before.booked


def test_a_cancelled_or_proposed_booking_holds_no_slot() -> None:
    records = COURSE.plus(cbt(1, 10))
    for state in ("cancelled", "proposed", "waitlist"):
        due = status(records, 12, booking("a1", 14, state), booking("a2", 21)).next_due.cbt_session
        assert due is not None and due.after_record_id == "a2", state


def test_a_no_show_counts_once_and_two_make_a_streak() -> None:
    records = COURSE.plus(cbt(1, 10))
    one = status(records, 18, booking("n1", 17, "noshow"))
    assert one.counts.cbt_missed == 1 and one.counts.cbt.done == 1
    two = status(records, 25, booking("n1", 17, "noshow"), booking("n2", 24, "noshow"))
    streak = [r for r in two.reasons if r.code == "cbt_no_show_streak"]
    assert two.counts.cbt_missed == 2 and [set(r.record_ids) for r in streak] == [{"n1", "n2"}]
    # The visit's own record of that day (a no-show CbtSession) is the one counted.
    same_day = status(records.plus(cbt(2, 17, "no-show")), 18, booking("n1", 17, "noshow"))
    assert same_day.counts.cbt_missed == 1


def test_a_fulfilled_cbt_appointment_is_the_attended_session_unless_recorded() -> None:
    records = COURSE.plus(cbt(1, 10))
    fulfilled = status(records, 18, booking("f1", 17, "fulfilled"))
    assert fulfilled.counts.cbt.done == 2 and fulfilled.last_contact is not None
    recorded = status(records.plus(cbt(2, 17)), 18, booking("f1", 17, "fulfilled"))
    assert recorded.counts.cbt.done == 2


def test_a_booked_ketamine_session_is_the_next_ketamine_due_and_a_no_show_is_missed() -> None:
    first = iv_course().sessions[0]
    records = Records(sessions=(first,), measurements=iv_course().measurements[:1])
    day = (first.started_at - at(0)) / timedelta(days=1)
    booked = status(records, day + 1, booking("k1", day + 2, service="ketamine"))
    due = booked.next_due.ketamine_session
    assert due is not None and (due.due_at, due.booked) == (at(day + 2), True)
    missed = status(records, day + 3, booking("k1", day + 2, "noshow", service="ketamine"))
    assert missed.counts.ketamine_missed == 1 and missed.counts.ketamine_induction.done == 1
