"""What every stored change of a record sets off, inside the transaction that stores it."""

from __future__ import annotations

from sqlmodel import Session

from service import outbox
from service.audit_trail import RequestContext
from service.patient_refresh import refresh_patient
from service.projection.writes import project
from service.record_fhir import NO_CONTEXT, kind_fhir
from service.record_store.kinds import RecordKind
from service.records.base import RecordMeta, TenantRecord


def record_written(
    session: Session, ctx: RequestContext, kind: RecordKind, row: TenantRecord, public: RecordMeta, *, created: bool
) -> None:
    """Publish the record's FHIR resources, refresh the patient's plan, and queue the change for the EHRs."""
    patient_id = kind.patient_of(row)
    canonical_base = ctx.settings.canonical_base
    table = kind_fhir(kind.path)
    # A derived resource (a CarePlan, with its computed status) is projected by the refresh below.
    if table is not None and not table.derived:
        resources = table.render(public, canonical_base, NO_CONTEXT)
        if resources:
            project(
                session,
                tenant_id=ctx.tenant_id,
                record_kind=kind.path,
                record_id=row.id,
                patient_id=patient_id,
                resources=resources,
                new_record=created,
            )
    if patient_id is not None and kind.enters_plan_status:
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
