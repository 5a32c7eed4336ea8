"""Adherence flags: overdue sessions and measurements, CBT no-show streaks, an overrunning induction.

All are warnings (CLINICAL.md section 4) except the missing pre-dose questionnaire, the pending baseline and
therapy sessions of unstated modality, which are notes: they inform but do not change the overall status.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from .flags import Finding
from .schedule import Deadline
from .timeline import Timeline, cbt_date
from .wording import day, session_noun

_ACTION = {
    "ketamine_overdue": "contact the patient to rebook",
    "cbt_not_started": "book the first CBT session",
    "cbt_overdue": "contact the patient and the therapist to rebook",
    "measurement_overdue": "send the questionnaire",
    "rems_form_overdue": "ask the clinic to submit it",
}


def overdue_findings(deadlines: list[Deadline], timeline: Timeline) -> list[Finding]:
    out = []
    for d in deadlines:
        if d.overdue_from is not None and timeline.clock.reached(d.overdue_from):
            out.append(Finding(d.code, "warning", f"{d.what} — {_ACTION[d.code]}.", d.after_record_id, d.overdue_from))
    return out


def baseline_pending(deadline: Deadline | None, timeline: Timeline) -> list[Finding]:
    if deadline is None or deadline.code != "baseline_due" or not timeline.clock.reached(deadline.due_at):
        return []
    return [
        Finding(
            "baseline_due",
            "info",
            f"{deadline.what} — send the questionnaire.",
            deadline.after_record_id,
            deadline.due_at,
        )
    ]


def induction_window(timeline: Timeline) -> list[Finding]:
    protocol, first = timeline.protocol, timeline.first_given
    if first is None or timeline.induction_done_at is not None:
        return []
    end = first.started_at + timedelta(days=protocol.induction_window_days)
    late_from = end + timedelta(days=protocol.grace_days)
    if not timeline.clock.reached(late_from):
        return []
    return [
        Finding(
            "induction_window_exceeded",
            "warning",
            f"Only {len(timeline.induction)} of {protocol.induction_sessions} induction "
            f"{session_noun(first.drug)}s were completed by {day(end, timeline.tz)}, "
            f"{protocol.induction_window_days:g} days after the first — review the plan with the prescriber.",
            first.id,
            late_from,
        )
    ]


def no_show_streak(timeline: Timeline) -> list[Finding]:
    streak = timeline.protocol.cbt_no_show_streak
    settled = [s for s in timeline.cbt if s.status != "planned"]
    recent = settled[-streak:]
    if len(recent) < streak or any(s.status == "attended" for s in recent):
        return []
    last = recent[-1]
    dates = ", ".join(f"{day(cbt_date(s), timeline.tz)} ({s.status.replace('-', ' ')})" for s in recent)
    return [
        Finding(
            "cbt_no_show_streak",
            "warning",
            f"{streak} CBT sessions in a row were missed: {dates}",
            last.id,
            cbt_date(last),
            tuple(s.id for s in recent),
            next_step="call the patient to re-engage",
        )
    ]


def predose_gaps(timeline: Timeline) -> list[Finding]:
    schedule = timeline.protocol.measurements
    if not schedule.before_each_induction_session:
        return []
    tolerance = timedelta(minutes=schedule.predose_tolerance_minutes)
    name = timeline.enrollment.primary_instrument.upper()
    points = timeline.primary_points
    out = []
    sessions = timeline.induction
    for before, session in pairwise(sessions):
        if not any(before.started_at < p.at <= session.started_at + tolerance for p in points):
            out.append(
                Finding(
                    "predose_measurement_missing",
                    "info",
                    f"No {name} was recorded before the {session_noun(session.drug)} on "
                    f"{day(session.started_at, timeline.tz)}.",
                    session.id,
                    session.started_at,
                )
            )
    return out


def unstated_modality(timeline: Timeline) -> list[Finding]:
    """Attended psychotherapy visits with no code saying CBT (CPT 90837 alone) count toward the CBT course: in a
    ketamine + CBT programme the therapy visits are the programme's CBT, and leaving them out would call every
    patient of an EHR that codes only CPT "CBT overdue". CLINICAL.md §1 says to keep the modality unknown rather
    than assume it, so the status says so in plain words, as a note that does not change the overall status."""
    counted = timeline.attended[: timeline.protocol.cbt_sessions]
    unstated = [s for s in counted if s.modality == "psychotherapy-unspecified"]
    if not unstated:
        return []
    last = unstated[-1]
    dates = ", ".join(day(cbt_date(s), timeline.tz) for s in unstated)
    return [
        Finding(
            "cbt_modality_not_stated",
            "info",
            f"{len(unstated)} of the {len(counted)} therapy sessions counted toward the CBT course were recorded "
            f"as psychotherapy without saying it was CBT ({dates}) — confirm with the therapist, or map the "
            "clinic's visit type to CBT.",
            last.id,
            cbt_date(last),
            tuple(s.id for s in unstated),
        )
    ]
