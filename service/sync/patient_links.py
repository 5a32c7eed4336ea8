"""A Patient pulled from an EHR that Tandem already holds by MRN: linked to that patient, never a second one.

The EHR's id for the patient is remembered as a resource the target holds for our record (`RemoteResource`, as
the push records what it wrote or found), so the pull resolves `Patient/<their id>` in the EHR's later resources
to our patient, and the push refers to the EHR's own Patient instead of creating a copy of it.

The hospital keeps a patient's contact details and death in the EHR (registration, ADT); the linked patient follows
them (`follow_pulled_patient`), so a coordinator calls the number the hospital has. Names, birth date and sex stay
as the programme enrolled them: they identify the patient, and a change there is for a person to look at.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from fhir_mappings import resource_id
from service.audit_trail import RequestContext
from service.clock import now_utc
from service.intake.patient_match import patient_by_mrn
from service.record_store import store
from service.record_store.kinds import PATIENTS
from service.records.patient import Patient, PatientCreate
from service.records.sync_target import SyncTarget
from service.sync.tables import RemoteResource

PATIENTS_KIND = "patients"
# What the EHR's registration holds and the linked patient follows, when the EHR sends it (an element left out
# is not a deletion: EHRs leave out what a search's _elements or a minimal profile drops).
FOLLOWED_CONTACT_DETAILS = ("telecom", "addresses", "contacts", "communication")


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


def follow_pulled_patient(session: Session, ctx: RequestContext, patient: Patient, pulled: PatientCreate) -> bool:
    """Take the EHR's contact details and death onto the linked patient, by the one update path (version, audit,
    plan refresh, ended enrolments of the deceased); True if anything changed. The same Patient pulled again
    changes nothing."""
    changes: dict[str, Any] = {}
    for name in FOLLOWED_CONTACT_DETAILS:
        sent = getattr(pulled, name)
        if sent and sent != getattr(patient, name):
            changes[name] = sent
    if pulled.deceased and not patient.deceased:  # an omission never brings a patient back to life
        changes |= {"deceased": True, "deceased_at": pulled.deceased_at}
    if not changes:
        return False
    store.update_record(session, ctx, PATIENTS, patient.id, changes, f'W/"{patient.version}"')
    return True
