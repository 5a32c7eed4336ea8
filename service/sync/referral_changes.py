"""A referral pulled again after it changed at the EHR (held, resumed, completed, revoked there) changes the
enrolment it made: a pull that only created would leave Tandem showing an active plan the EHR has discharged."""

from __future__ import annotations

from sqlmodel import Session

from service.audit_trail import RequestContext
from service.record_store import store
from service.record_store.kinds import ENROLLMENTS
from service.records.base import RecordMeta
from service.records.enrollment import EnrollmentCreate

# What a referral's status change carries (fhir_mappings/referral.py); the rest stays as first pulled.
_CHANGED_BY_STATUS = ("status", "status_reason", "end_date")


def follow_referral(session: Session, ctx: RequestContext, stored: RecordMeta, pulled: EnrollmentCreate) -> bool:
    """Apply the pulled referral's status, reason and end date to the enrolment it made; True if anything moved."""
    changes = {name: getattr(pulled, name) for name in _CHANGED_BY_STATUS}
    if all(getattr(stored, name) == value for name, value in changes.items()):
        return False
    store.update_record(session, ctx, ENROLLMENTS, stored.id, changes, f'W/"{stored.version}"')
    return True
