"""Which of the hospital's patients the EHR is showing: its `context.patientId` is the EHR's own id.

In order: the patient Tandem already links to that id at the EHR's sync target (a pulled or pushed Patient:
`sync_remote_resources`, or a patient the pull created, whose source names the EHR's id); else the MRNs of the
prefetched Patient; else, when the EHR sent no prefetch but a `fhirAuthorization`, the MRNs of the Patient read
from its `fhirServer` — only the registered target's base URL, never another. No match: None (an empty card list).
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import Session, col, select

from service.cds_hooks.tables import CdsClient
from service.intake.patient_match import patient_by_mrn
from service.records.patient import Patient
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.tables import RemoteResource
from service.sync.url_safety import check_target_url

FETCH_TIMEOUT = httpx.Timeout(3.0, connect=2.0)
MAX_PATIENT_BYTES = 256 * 1024


class FhirServerRefused(Exception):
    """The request names a fhirServer that is not the registered EHR's."""


def linked_patient(session: Session, client: CdsClient, ehr_patient_id: str) -> Patient | None:
    target = _target(session, client)
    if target is None:
        return None
    record_id = session.exec(
        select(RemoteResource.record_id).where(
            col(RemoteResource.target_id) == target.id,
            col(RemoteResource.resource_type) == "Patient",
            col(RemoteResource.remote_id) == ehr_patient_id,
            col(RemoteResource.record_kind) == "patients",
        )
    ).first()
    query = select(Patient).where(col(Patient.tenant_id) == client.tenant_id)
    if record_id is not None:
        return session.exec(query.where(col(Patient.id) == record_id)).first()
    return session.exec(
        query.where(
            col(Patient.source_system) == target.base_url, col(Patient.source_id) == f"Patient/{ehr_patient_id}"
        )
    ).first()


def patient_by_identifiers(session: Session, client: CdsClient, resource: Any, ehr_patient_id: str) -> Patient | None:
    """The tenant's patient holding one of this FHIR Patient's identifiers (MRNs); the resource must be the
    Patient in context (a prefetch for another patient is ignored)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
        return None
    if resource.get("id") not in (None, ehr_patient_id):
        return None
    identifiers = [i for i in resource.get("identifier") or [] if isinstance(i, dict)]
    mrns = [{"system": i.get("system"), "value": i.get("value")} for i in identifiers]
    return patient_by_mrn(session, client.tenant_id, mrns)


def fetch_patient(
    session: Session,
    settings: Settings,
    client: CdsClient,
    fhir_server: str,
    access_token: str,
    ehr_patient_id: str,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any] | None:
    """GET {fhirServer}/Patient/{id} with the token the EHR gave; only when fhirServer is the registered target's
    base URL (else FhirServerRefused). None when the EHR does not answer with the Patient."""
    target = _target(session, client)
    if target is None or fhir_server.rstrip("/") != target.base_url.rstrip("/"):
        raise FhirServerRefused("fhirServer is not the FHIR base URL registered for this EHR")
    url = f"{target.base_url.rstrip('/')}/Patient/{ehr_patient_id}"
    check_target_url(url, allowed_hosts=settings.sync_allowed_hosts, require_https=settings.sync_require_https)
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/fhir+json"}
    try:
        with httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False, transport=transport) as http:
            response = http.get(url, headers=headers)
    except httpx.HTTPError:
        return None
    if response.status_code != 200 or len(response.content) > MAX_PATIENT_BYTES:
        return None
    try:
        found = response.json()
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _target(session: Session, client: CdsClient) -> SyncTarget | None:
    if client.sync_target_id is None:
        return None
    target = session.get(SyncTarget, client.sync_target_id)
    return target if target is not None and target.tenant_id == client.tenant_id else None
