"""Appointments in the plan (CLINICAL.md §1: "a booked CBT or ketamine appointment is the next due date; noshow
counts as a no-show").

- A booked appointment (booked, pending, arrived, checked-in) after the last session of its kind is that kind's next
  due date: the coordinator's action — book the next session — is done. It becomes overdue when its time passes by
  the protocol's grace period with no session recorded since.
- A CBT appointment that settled (fulfilled, noshow) is a CBT session, attended or no-show, unless a CBT session
  record of the same local day says what happened (the visit's own record, an Encounter, is the better one, and one
  visit must not count twice). So a no-show counts once, in the missed count and in the no-show streak.
- Cancelled, proposed and waitlisted appointments hold no slot and count for nothing: EHRs cancel to reschedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from .inputs import AppointmentFacts, CbtSessionFacts
from .schedule import Deadline
from .status import DueKind
from .timeline import Timeline, cbt_date
from .wording import day, session_noun

HOLDS_A_SLOT = frozenset({"pending", "booked", "arrived", "checked-in"})


def appointment_sessions(
    appointments: Sequence[AppointmentFacts], cbt_sessions: Sequence[CbtSessionFacts], tz: tzinfo
) -> list[CbtSessionFacts]:
    """The settled CBT appointments no CBT session record covers, as CBT sessions."""
    recorded_days = {cbt_date(s).astimezone(tz).date() for s in cbt_sessions}
    found = []
    for a in appointments:
        if a.service != "cbt" or a.status not in ("fulfilled", "noshow"):
            continue
        if a.start.astimezone(tz).date() in recorded_days:
            continue
        attended = a.status == "fulfilled"
        found.append(
            CbtSessionFacts(
                id=a.id,
                session_number=0,  # not ours to number: it orders after a numbered session of the same instant
                planned_start=a.start,
                status="attended" if attended else "no-show",
                actual_start=a.start if attended else None,
            )
        )
    return found


def booked_deadline(
    deadline: Deadline | None,
    appointments: Sequence[AppointmentFacts],
    timeline: Timeline,
    service: str,
    last: datetime | None,
) -> Deadline | None:
    """The protocol's deadline, or the first booked appointment of `service` after the last session (`last`)."""
    clock, tz = timeline.clock, timeline.tz
    after_day = last.astimezone(tz).date() if last is not None else None
    held = sorted(
        (
            a
            for a in appointments
            if a.service == service
            and a.status in HOLDS_A_SLOT
            and (after_day is None or a.start.astimezone(tz).date() > after_day)
            and clock.reached(a.recorded_at)
        ),
        key=lambda a: (a.start, a.id),
    )
    if not held:
        return deadline
    first = held[0]
    kind: DueKind = "cbt_session" if service == "cbt" else "ketamine_session"
    code = deadline.code if deadline is not None else ("cbt_overdue" if service == "cbt" else "ketamine_overdue")
    noun = "CBT session" if service == "cbt" else session_noun(timeline.protocol.drug)
    return Deadline(
        kind,
        code,
        first.start,
        None,
        first.start + timedelta(days=timeline.protocol.grace_days),
        first.id,
        f"The {noun} booked for {day(first.start, tz)} has not been recorded as held",
        booked=True,
    )


def ketamine_missed(appointments: Sequence[AppointmentFacts], timeline: Timeline) -> int:
    return sum(
        1 for a in appointments if a.service == "ketamine" and a.status == "noshow" and timeline.clock.reached(a.start)
    )
