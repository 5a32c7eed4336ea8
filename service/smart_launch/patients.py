"""The launch context's patient (the EHR's Patient id) as Tandem's patient of the same tenant.

First by the id itself: the patient the tenant's sync target at this EHR linked or created from that id
(service/sync/patient_links.py keeps it as a RemoteResource; a pulled patient's source names it). Else by MRN:
the EHR's Patient is read with the launch's own access token and its identifiers matched (service/intake
patient_by_mrn). None: Tandem does not follow this patient, and the launch is refused.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from service.intake.patient_match import patient_by_mrn
from service.records.patient import Patient
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.smart_launch.ehr_http import get_json
from service.smart_launch.tables import SmartRegistration
from service.sync.patient_links import PATIENTS_KIND
from service.sync.tables import RemoteResource


def patient_by_ehr_id(session: Session, registration: SmartRegistration, ehr_patient_id: str) -> Patient | None:
    tenant_id, sources = registration.tenant_id, {registration.iss}
    if registration.target_id is not None:
        target = session.get(SyncTarget, registration.target_id)
        if target is not None and target.tenant_id == tenant_id:
            sources.add(target.base_url.rstrip("/"))
            linked = session.exec(
                select(Patient)
                .join(RemoteResource, col(RemoteResource.record_id) == col(Patient.id))
                .where(
                    col(RemoteResource.target_id) == target.id,
                    col(RemoteResource.record_kind) == PATIENTS_KIND,
                    col(RemoteResource.role) == "main",
                    col(RemoteResource.remote_id) == ehr_patient_id,
                    col(Patient.tenant_id) == tenant_id,
                )
            ).first()
            if linked is not None:
                return linked
    return session.exec(
        select(Patient).where(
            col(Patient.tenant_id) == tenant_id,
            col(Patient.source_system).in_(sorted(sources)),
            col(Patient.source_id) == f"Patient/{ehr_patient_id}",
        )
    ).first()


def ehr_identifiers(
    registration: SmartRegistration, ehr_patient_id: str, access_token: str, settings: Settings
) -> list[dict[str, Any]]:
    """The identifiers of the EHR's Patient ({system, value}), read with the launch's token."""
    if not ehr_patient_id.replace("-", "").replace(".", "").isalnum() or len(ehr_patient_id) > 64:
        return []  # not a FHIR id: nothing to read
    resource = get_json(
        f"{registration.iss}/Patient/{ehr_patient_id}",
        settings,
        "Patient",
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/fhir+json"},
    )
    found = resource.get("identifier") if resource.get("resourceType") == "Patient" else None
    return [
        {"system": i["system"], "value": i["value"]}
        for i in found or []
        if isinstance(i, dict) and isinstance(i.get("system"), str) and isinstance(i.get("value"), str)
    ]


def patient_by_identifiers(session: Session, tenant_id: str, identifiers: list[dict[str, Any]]) -> Patient | None:
    return patient_by_mrn(session, tenant_id, identifiers)
