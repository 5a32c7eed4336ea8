"""What the engine returns: a frozen, JSON-serialisable snapshot of one enrollment's plan as of an instant."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .inputs import Acknowledgement, EnrollmentStatus

Severity = Literal["urgent", "warning", "info"]
Phase = Literal["baseline", "induction", "consolidation", "maintenance"]
OverallStatus = Literal["completed", "discontinued", "on_hold", "at_risk", "needs_attention", "on_track"]
DueKind = Literal["ketamine_session", "cbt_session", "measurement", "rems_form"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(_Out):
    code: str
    severity: Severity
    # What happened and, while open, what to do next; once acknowledged, who closed it and when.
    message: str
    # The next action alone, while the reason is open (None once closed, or for a reason with no single action).
    next_step: str | None = None
    # What happened alone, without the next step or who closed it: a page that says those its own way (a closed
    # reason: "closed by … on … (zone)") shows this. None only in statuses stored before it was recorded.
    what_happened: str | None = None
    # The record an acknowledgement must name to close this occurrence; always one of record_ids.
    occurrence_id: str
    record_ids: tuple[str, ...]
    since: datetime
    needs_acknowledgement: bool
    acknowledgement: Acknowledgement | None
    open: bool


class Count(_Out):
    done: int
    expected: int


class Counts(_Out):
    ketamine_induction: Count
    ketamine_after_induction: int
    cbt: Count
    measurements: Count
    # Sessions the patient did not come to: CBT sessions recorded as no-shows and no-show appointments (one each).
    cbt_missed: int = 0
    ketamine_missed: int = 0


class ScorePoint(_Out):
    record_id: str
    at: datetime
    total: float


class InstrumentOutcome(_Out):
    instrument: str
    title: str
    baseline: ScorePoint | None
    latest: ScorePoint | None
    latest_band: str | None
    # (latest - baseline) / baseline in percent: negative is improvement.
    change_percent: float | None
    in_response: bool | None
    responded_at: datetime | None
    in_remission: bool | None
    remitted_at: datetime | None
    # None until it can be judged: the first measurement after the last induction session.
    non_response: bool | None
    worsening: bool
    relapse: bool
    relapsed_at: datetime | None


class Due(_Out):
    kind: DueKind
    due_at: datetime
    earliest_at: datetime | None
    overdue_from: datetime | None
    overdue: bool
    # The record the due date is counted from (last session, measurement or the enrollment), or the appointment
    # that booked it.
    after_record_id: str
    # Due at a booked appointment (after_record_id), rather than by the protocol's cadence.
    booked: bool = False
    # Once overdue: every due date passed with nothing received (for a measurement, each slot of its cadence up
    # to as_of, so a chart can show an eight-week gap as eight missed questionnaires). Empty while not overdue.
    missed: tuple[datetime, ...] = ()


class NextDue(_Out):
    ketamine_session: Due | None
    cbt_session: Due | None
    measurement: Due | None
    rems_form: Due | None


class LastContact(_Out):
    kind: Literal["ketamine_session", "cbt_session", "measurement"]
    at: datetime
    record_id: str


class PlanStatus(_Out):
    enrollment_id: str
    patient_id: str
    protocol_id: str
    protocol_version: str
    as_of: datetime
    status: OverallStatus
    phase: Phase
    weeks_in_treatment: int
    counts: Counts
    outcomes: tuple[InstrumentOutcome, ...]
    reasons: tuple[Reason, ...]
    next_due: NextDue
    last_contact: LastContact | None
    # Earliest instant after as_of at which time alone could change this status; None if nothing pending.
    next_recompute_at: datetime | None
    # The enrollment's own state, shown beside `status` when they differ ("at risk — enrolment on hold").
    # None only in statuses stored before it was recorded.
    enrollment_status: EnrollmentStatus | None = None

    @property
    def open_reasons(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.open)
