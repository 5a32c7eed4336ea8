"""A Patient pulled from an EHR that Tandem already holds by MRN: linked to that patient, never a second one.

The EHR's id for the patient is remembered as a resource the target holds for our record (`RemoteResource`, as
the push records what it wrote or found), so the pull resolves `Patient/<their id>` in the EHR's later resources
to our patient, and the push refers to the EHR's own Patient instead of creating a copy of it.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from fhir_mappings import resource_id
from service.clock import now_utc
from service.intake.patient_match import patient_by_mrn
from service.records.patient import Patient, PatientCreate
from service.records.sync_target import SyncTarget
from service.sync.tables import RemoteResource

PATIENTS_KIND = "patients"


def link_pulled_patient(
    session: Session, target: SyncTarget, payload: PatientCreate, resource: dict[str, Any]
) -> Patient | None:
    """The patient of the tenant holding one of the pulled Patient's MRNs, linked to the EHR's id; None when no
    patient holds them (the pull then creates one)."""
    mrns = [m.model_dump() for m in payload.identifiers]
    patient = patient_by_mrn(session, target.tenant_id, mrns)
    if patient is None:
        return None
    remote_id = str(resource["id"])
    if patient.source_system == target.base_url and patient.source_id == f"Patient/{remote_id}":
        return patient  # the one this pull created before: its source already names the EHR's id
    version = (resource.get("meta") or {}).get("versionId")
    row = session.exec(
        select(RemoteResource).where(
            col(RemoteResource.target_id) == target.id,
            col(RemoteResource.record_kind) == PATIENTS_KIND,
            col(RemoteResource.record_id) == patient.id,
            col(RemoteResource.role) == "main",
        )
    ).first()
    if row is None:
        row = RemoteResource(
            tenant_id=target.tenant_id,
            target_id=target.id,
            record_kind=PATIENTS_KIND,
            record_id=patient.id,
            role="main",
            resource_type="Patient",
            local_id=resource_id(patient.id),
            remote_id=remote_id,
            record_version=patient.version,
            updated_at=now_utc(),
        )
    row.remote_id, row.remote_version, row.updated_at = remote_id, str(version) if version else None, now_utc()
    session.add(row)
    session.flush()
    return patient
