"""What every stored change of a record sets off, inside the transaction that stores it."""

from __future__ import annotations

from sqlmodel import Session

from service.audit_trail import RequestContext
from service.caseload.recompute import recompute_patient
from service.records.base import TenantRecord
from service.records.kinds import RecordKind
from service.sync import outbox


def record_written(session: Session, ctx: RequestContext, kind: RecordKind, row: TenantRecord) -> None:
    """Recompute the patient's plan status and queue the change for the EHR targets that take it."""
    patient_id = kind.patient_of(row)
    if patient_id is not None:
        recompute_patient(session, ctx.tenant_id, patient_id)
    outbox.enqueue(
        session,
        tenant_id=ctx.tenant_id,
        record_kind=kind.path,
        record_id=row.id,
        record_version=row.version,
        patient_id=patient_id,
    )
