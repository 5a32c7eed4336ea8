"""What every stored change of a record sets off, inside the transaction that stores it."""

from __future__ import annotations

from sqlmodel import Session

from service.audit_trail import RequestContext
from service.fhir.projection import project, resources_of
from service.patient_refresh import refresh_patient
from service.record_store.kinds import RecordKind
from service.records.base import RecordMeta, TenantRecord
from service.sync import outbox


def record_written(
    session: Session, ctx: RequestContext, kind: RecordKind, row: TenantRecord, public: RecordMeta
) -> None:
    """Publish the record's FHIR resources, refresh the patient's plan, and queue the change for the EHRs."""
    patient_id = kind.patient_of(row)
    canonical_base = ctx.settings.canonical_base
    if kind.path != "enrollments":  # CarePlans are projected with their computed status, by the refresh below
        resources = resources_of(kind.path, public, canonical_base)
        if resources:
            project(
                session,
                tenant_id=ctx.tenant_id,
                record_kind=kind.path,
                record_id=row.id,
                patient_id=patient_id,
                resources=resources,
            )
    # A patient's own details (name, MRNs) do not enter the plan status: only their records trigger a refresh.
    if patient_id is not None and kind.path != "patients":
        refresh_patient(session, tenant_id=ctx.tenant_id, patient_id=patient_id, canonical_base=canonical_base)
    outbox.enqueue(
        session,
        tenant_id=ctx.tenant_id,
        record_kind=kind.path,
        record_id=row.id,
        record_version=row.version,
        patient_id=patient_id,
        came_from_target=ctx.origin_target,
    )
