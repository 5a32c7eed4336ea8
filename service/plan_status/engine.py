"""compute_plan_status: the whole plan status of one enrollment as of an instant, from facts alone.

Pure and deterministic: no clock, no I/O; input order does not matter; records dated after as_of are
ignored, so recomputing a past as_of reproduces what was knowable then, and a late, back-dated record
changes only results computed after it arrived.

The engine applies whichever protocol it is given to the whole course. The enrollment keeps the protocol
version it started with unless a clinician explicitly moves it; the caller loads that version. A protocol
with another id is refused; another version is applied, with an info reason saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from .adherence import (
    baseline_pending,
    induction_window,
    no_show_streak,
    overdue_findings,
    predose_gaps,
    unstated_modality,
)
from .appointments import appointment_sessions, booked_deadline, ketamine_missed
from .clock import Clock
from .flags import Finding, to_reasons
from .inputs import (
    Acknowledgement,
    AppointmentFacts,
    CbtSessionFacts,
    EnrollmentFacts,
    KetamineSessionFacts,
    MeasurementFacts,
)
from .outcomes import Trajectory, outcome_findings, outcome_instruments, trajectory
from .protocols import Protocol
from .safety import all_safety_findings
from .schedule import Deadline, cbt_deadline, counts, ketamine_deadline, measurement_deadline, rems_deadlines
from .status import Due, LastContact, NextDue, OverallStatus, PlanStatus, Reason
from .timeline import Timeline, build_timeline, cbt_date

_FROM_ENROLLMENT: dict[str, OverallStatus] = {
    "completed": "completed",
    "discontinued": "discontinued",
    "on-hold": "on_hold",
}


def compute_plan_status(
    enrollment: EnrollmentFacts,
    administrations: Sequence[KetamineSessionFacts],
    cbt_sessions: Sequence[CbtSessionFacts],
    measurements: Sequence[MeasurementFacts],
    protocol: Protocol,
    acknowledgements: Sequence[Acknowledgement],
    as_of: datetime,
    *,
    tz: tzinfo = UTC,
    appointments: Sequence[AppointmentFacts] = (),
) -> PlanStatus:
    """tz is the hospital's zone: it places the enrollment start date and spells dates in messages. Appointments
    booked in the EHR set next due dates and count no-shows (plan_status/appointments.py)."""
    if protocol.id != enrollment.protocol_id:
        raise ValueError(f"enrollment follows protocol {enrollment.protocol_id!r}, not {protocol.id!r}")
    clock = Clock(as_of)
    cbt_sessions = [*cbt_sessions, *appointment_sessions(appointments, cbt_sessions, tz)]
    timeline = build_timeline(
        enrollment, administrations, cbt_sessions, measurements, acknowledgements, protocol, clock, tz
    )
    trajectories = [(i, trajectory(i, timeline)) for i in outcome_instruments(timeline)]
    primary = next((t for i, t in trajectories if i.key == enrollment.primary_instrument), None)
    active = enrollment.status == "active"

    findings = all_safety_findings(timeline)
    for instrument, traj in trajectories:
        findings += outcome_findings(
            instrument, traj, timeline, primary=instrument.key == enrollment.primary_instrument
        )
    rems = rems_deadlines(timeline)
    # REMS forms are a regulatory duty for doses already given, whatever the enrollment's state now.
    findings += overdue_findings(rems, timeline)
    ketamine = cbt = measurement = None
    if active:
        ketamine = ketamine_deadline(timeline)
        last_given = timeline.given[-1].started_at if timeline.given else None
        ketamine = booked_deadline(ketamine, appointments, timeline, "ketamine", last_given)
        cbt = cbt_deadline(timeline, primary.outcome.responded_at if primary else None)
        if timeline.cbt_done_at is None:
            last_attended = cbt_date(timeline.attended[-1]) if timeline.attended else None
            cbt = booked_deadline(cbt, appointments, timeline, "cbt", last_attended)
        measurement = measurement_deadline(timeline, ketamine)
        findings += overdue_findings([d for d in (ketamine, cbt, measurement) if d is not None], timeline)
        findings += baseline_pending(measurement, timeline)
        findings += induction_window(timeline) + no_show_streak(timeline) + predose_gaps(timeline)
    findings += unstated_modality(timeline) + _version_note(timeline)
    if enrollment.ended_by_death:
        # CLINICAL.md §5: a deceased patient's outreach reasons stop; the plan says so plainly and asks nothing.
        findings = [
            Finding(
                "patient_deceased",
                "info",
                f"Deceased: the patient has died ({enrollment.status_reason}); the enrolment has ended and no "
                "outreach is due.",
                enrollment.id,
                timeline.start,
            )
        ]
        ketamine = cbt = measurement = None
        rems = []
    reasons = to_reasons(findings, timeline.acknowledgements, timeline.tz)

    rems_next = min(rems, key=lambda d: (d.due_at, d.after_record_id), default=None)
    next_due = NextDue(
        ketamine_session=_due(ketamine, clock),
        cbt_session=_due(cbt, clock),
        measurement=_due(measurement, clock),
        rems_form=_due(rems_next, clock),
    )
    result_counts = counts(timeline).model_copy(
        update={
            "cbt_missed": sum(1 for s in timeline.cbt if s.status == "no-show"),
            "ketamine_missed": ketamine_missed(appointments, timeline),
        }
    )
    return PlanStatus(
        enrollment_id=enrollment.id,
        patient_id=enrollment.patient_id,
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        as_of=as_of,
        status=_overall(enrollment, reasons, primary),
        phase=timeline.phase,
        weeks_in_treatment=_weeks(timeline),
        counts=result_counts,
        outcomes=tuple(t.outcome for _, t in trajectories),
        reasons=reasons,
        next_due=next_due,
        last_contact=_last_contact(timeline),
        next_recompute_at=clock.next_change(),
        enrollment_status=enrollment.status,
    )


def _due(deadline: Deadline | None, clock: Clock) -> Due | None:
    if deadline is None:
        return None
    overdue = deadline.overdue_from is not None and clock.reached(deadline.overdue_from)
    return deadline.due(overdue, clock)


def _overall(enrollment: EnrollmentFacts, reasons: Sequence[Reason], primary: Trajectory | None) -> OverallStatus:
    if enrollment.ended_by_death:
        return "discontinued"
    open_severities = {r.severity for r in reasons if r.open}
    # An open urgent finding comes before the enrollment's state: patients are often put on hold *because of* a
    # crisis, and on_hold would sort them last and out of the at-risk view (CLINICAL.md section 4).
    # Relapse is a state, not only a flag: acknowledging it does not make the plan on track again.
    if "urgent" in open_severities or (primary is not None and primary.outcome.relapse):
        return "at_risk"
    if enrollment.status in _FROM_ENROLLMENT:
        return _FROM_ENROLLMENT[enrollment.status]
    return "needs_attention" if "warning" in open_severities else "on_track"


def _weeks(timeline: Timeline) -> int:
    clock, week = timeline.clock, timedelta(days=7)
    if not clock.reached(timeline.start):
        return 0
    weeks = (clock.as_of - timeline.start) // week
    clock.reached(timeline.start + week * (weeks + 1))
    return int(weeks)


def _last_contact(timeline: Timeline) -> LastContact | None:
    # (at, kind, record_id) tuples, one LastContact built for the latest (building one per record was ~10 % of
    # the recompute)
    contacts = [(s.started_at, "ketamine_session", s.id) for s in timeline.given]
    contacts += [(cbt_date(s), "cbt_session", s.id) for s in timeline.attended]
    contacts += [(m.authored_at, "measurement", m.id) for m in timeline.measurements]
    latest = max(contacts, default=None)
    if latest is None:
        return None
    return LastContact(kind=latest[1], at=latest[0], record_id=latest[2])


def _version_note(timeline: Timeline) -> list[Finding]:
    enrollment, protocol = timeline.enrollment, timeline.protocol
    if enrollment.protocol_version == protocol.version:
        return []
    return [
        Finding(
            "protocol_version_differs",
            "info",
            f"Assessed against version {protocol.version} of the {protocol.title} protocol; the enrollment "
            f"records version {enrollment.protocol_version}.",
            enrollment.id,
            timeline.start,
        )
    ]
