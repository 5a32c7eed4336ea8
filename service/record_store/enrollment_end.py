"""Ending an enrolment from outside its own record: a patient's death (Patient.deceased[x], CLINICAL.md §5), a
discharge decided elsewhere. Through the store, so the plan refresh, the audit row and the EHR outbox follow as
for any update; an open urgent finding stays visible after it (the plan-status engine's rule order)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from sqlmodel import Session, col, select

from service.audit_trail import RequestContext
from service.record_store import store
from service.record_store.kinds import ENROLLMENTS
from service.records.base import RecordMeta
from service.records.enrollment import Enrollment

_OPEN = ("active", "on-hold")


def end_enrollment(
    session: Session,
    ctx: RequestContext,
    enrollment_id: str,
    *,
    reason: str,
    status: Literal["completed", "discontinued"] = "discontinued",
    end_date: date | None = None,
) -> RecordMeta | None:
    """End one open enrolment with a reason, and end_date when given (never before its start). One already
    completed or discontinued is left as it is: None."""
    row = store.locked_record(session, ctx.tenant_id, ENROLLMENTS, enrollment_id)
    assert isinstance(row, Enrollment)
    if row.status not in _OPEN:
        return None
    changes: dict[str, object] = {"status": status, "status_reason": reason}
    if end_date is not None:
        changes["end_date"] = max(end_date, row.start_date)
    return store.update_record(session, ctx, ENROLLMENTS, enrollment_id, changes, f'W/"{row.version}"')


def end_patient_enrollments(
    session: Session,
    ctx: RequestContext,
    patient_id: str,
    *,
    reason: str,
    status: Literal["completed", "discontinued"] = "discontinued",
    end_date: date | None = None,
) -> list[RecordMeta]:
    """End every open enrolment of a patient (a deceased patient's: reason "Patient deceased"); the ended ones."""
    ids = session.exec(
        select(Enrollment.id).where(
            col(Enrollment.tenant_id) == ctx.tenant_id,
            col(Enrollment.patient_id) == patient_id,
            col(Enrollment.status).in_(_OPEN),
        )
    ).all()
    ended = [end_enrollment(session, ctx, i, reason=reason, status=status, end_date=end_date) for i in ids]
    return [e for e in ended if e is not None]
