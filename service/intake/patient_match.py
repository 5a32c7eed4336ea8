"""Which patient Tandem already has for an incoming Patient: matched by medical record number.

An MRN names one patient within a tenant (the unique constraint on patient_identifiers). A Patient pulled from an
EHR with an MRN Tandem already holds *is* that patient, whatever id the EHR gives it: the pull links the EHR's id
to it instead of creating a second patient (service/sync/patient_links.py). A create sent to us (POST, Bundle,
import) under its own source identifier with an MRN another patient holds stays a 409 conflict: the sender says
"new patient", and merging two identities on a typing error is the worse mistake. A Patient named only by its
MRN (no other identifier) is the patient with that MRN: sending it again is a resend (`patient_named_by_mrn`).
The pull also uses `patients_with_mrn` to scope its searches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, col, select

from service.records.patient import Patient, PatientIdentifier


def patient_by_mrn(session: Session, tenant_id: str, mrns: Iterable[Mapping[str, Any]]) -> Patient | None:
    """The tenant's patient holding any of these MRNs ({system, value}), or None. MRNs are unique per tenant,
    so at most one patient can hold each; the first listed that is found wins."""
    pairs = [(str(m["system"]), str(m["value"])) for m in mrns if m.get("system") and m.get("value")]
    for system, value in pairs:
        found = session.exec(
            select(Patient)
            .join(
                PatientIdentifier,
                (col(PatientIdentifier.tenant_id) == col(Patient.tenant_id))
                & (col(PatientIdentifier.patient_id) == col(Patient.id)),
            )
            .where(
                col(PatientIdentifier.tenant_id) == tenant_id,
                col(PatientIdentifier.system) == system,
                col(PatientIdentifier.value) == value,
            )
        ).first()
        if found is not None:
            return found
    return None


def patient_named_by_mrn(session: Session, tenant_id: str, values: Mapping[str, Any]) -> Patient | None:
    """The store's match for a new patient sent with no source identifier (a Patient whose only identifiers are
    MRNs): the patient holding one of its MRNs. Sending such a Patient again is a resend, not a conflict."""
    return patient_by_mrn(session, tenant_id, values.get("identifiers") or [])


def patient_mrn(session: Session, tenant_id: str, patient_id: str, mrn_system: str) -> str | None:
    """The patient's MRN under one issuing system (a sync target's `mrn_system`), or None."""
    value: str | None = session.exec(
        select(PatientIdentifier.value).where(
            col(PatientIdentifier.tenant_id) == tenant_id,
            col(PatientIdentifier.patient_id) == patient_id,
            col(PatientIdentifier.system) == mrn_system,
        )
    ).first()
    return value


def patients_with_mrn(session: Session, tenant_id: str, mrn_system: str) -> list[tuple[str, str]]:
    """(patient id, MRN) of every patient of the tenant with an MRN under `mrn_system`, in a stable order: the
    patients a patient-scoped pull from that target asks about."""
    rows = session.exec(
        select(PatientIdentifier.patient_id, PatientIdentifier.value)
        .where(col(PatientIdentifier.tenant_id) == tenant_id, col(PatientIdentifier.system) == mrn_system)
        .order_by(col(PatientIdentifier.patient_id))
    )
    return [(patient_id, value) for patient_id, value in rows]
