"""Patient ⇄ FHIR Patient, with the US Core elements identifier (MRNs typed MR), name, gender, birthDate."""

from __future__ import annotations

from typing import Any

from .codes import MEDICAL_RECORD_NUMBER, RESTRICTED, RESTRICTED_CODES, V2_IDENTIFIER_TYPE, V3_CONFIDENTIALITY
from .errors import MappingError
from .identity import base_resource, day, source_from
from .reading import as_list, as_object, expect_type, full_date
from .records import PatientRecord
from .release import Patient, build

_MR_TYPE = {
    "coding": [{"system": V2_IDENTIFIER_TYPE, "code": MEDICAL_RECORD_NUMBER[0], "display": MEDICAL_RECORD_NUMBER[1]}]
}
_GENDERS = frozenset({"female", "male", "other", "unknown"})
# Identifier type labels that mean "medical record number" when no coding is sent (Epic: "MRN").
_MRN_LABELS = frozenset({"MRN", "MR", "MEDICAL RECORD NUMBER"})


# Where the service records a patient it creates itself (no sender): see service/records/base.py.
OWN_SOURCE_SYSTEM = "urn:tandem:record"


def patient_resource(record: PatientRecord, *, canonical_base: str) -> Patient:
    """Patient identity belongs to the hospital: the Patient carries the hospital's identifiers (the sender's id
    and the MRNs) and, only when it has none, ours. Our record id is the resource id either way."""
    resource = base_resource("Patient", canonical_base, "patient", record, f"Patient {record.family_name}")
    ours, source = resource["identifier"]
    hospital = [] if source["system"] == OWN_SOURCE_SYSTEM else [source]
    hospital += [{"use": "usual", "type": _MR_TYPE, "system": i.system, "value": i.value} for i in record.identifiers]
    resource["identifier"] = hospital or [ours]
    name: dict[str, Any] = {"use": "official", "family": record.family_name}
    if record.given_name is not None:
        name["given"] = [record.given_name]
    resource |= {"name": [name], "gender": record.sex, "birthDate": day(record.birth_date)}
    if record.restricted:
        label = {"system": V3_CONFIDENTIALITY, "code": RESTRICTED[0], "display": RESTRICTED[1]}
        resource["meta"] = {**resource["meta"], "security": [label]}
    return build(Patient, resource)


def _is_restricted(resource: dict[str, Any]) -> bool:
    meta = resource.get("meta")
    labels = as_list(meta.get("security"), "Patient.meta.security") if isinstance(meta, dict) else []
    return any(
        isinstance(label, dict) and label.get("system") == V3_CONFIDENTIALITY and label.get("code") in RESTRICTED_CODES
        for label in labels
    )


def is_mrn(identifier: dict[str, Any], mrn_systems: frozenset[str] = frozenset()) -> bool:
    """An identifier is a medical record number when it is typed v2-0203 MR, when its type says only "MRN" in
    text (Epic types its MRN identifier with a text label beside the OID system, no coding), or when its system
    is one the sender is known to issue MRNs under (a sync target's `mrn_system`)."""
    if identifier.get("system") in mrn_systems:
        return True
    kind = identifier.get("type")
    if not isinstance(kind, dict):
        return False
    if isinstance(kind.get("text"), str) and kind["text"].strip().upper() in _MRN_LABELS:
        return True
    return any(
        isinstance(c, dict) and c.get("system") == V2_IDENTIFIER_TYPE and c.get("code") == MEDICAL_RECORD_NUMBER[0]
        for c in kind.get("coding") or []
    )


def patient_from_fhir(
    resource: dict[str, Any],
    *,
    canonical_base: str,
    source_system: str | None = None,
    mrn_systems: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """A PatientCreate body. MRNs are the identifiers typed MR; a missing gender is 'unknown'; a confidentiality
    label R or V in meta.security makes the patient restricted."""
    expect_type(resource, "Patient")
    mrns = []
    for i, raw in enumerate(as_list(resource.get("identifier"), "Patient.identifier")):
        identifier = as_object(raw, f"Patient.identifier[{i}]")
        if is_mrn(identifier, mrn_systems):
            if not identifier.get("system") or not identifier.get("value"):
                raise MappingError(f"Patient.identifier[{i}]", "an MRN needs both system and value")
            mrns.append({"system": identifier["system"], "value": identifier["value"]})
    family, given = _name(resource)
    gender = resource.get("gender", "unknown")
    if gender not in _GENDERS:
        raise MappingError("Patient.gender", f"{gender!r} is not an R4 administrative gender", code="code-invalid")
    if "birthDate" not in resource:
        raise MappingError("Patient.birthDate", "is required", code="required")
    return {
        "source": source_from(
            resource, canonical_base, "patient", source_system, skip=lambda i: is_mrn(i, mrn_systems)
        ),
        "identifiers": mrns,
        "family_name": family,
        "given_name": given,
        "birth_date": full_date(resource["birthDate"], "Patient.birthDate"),
        "sex": gender,
        "restricted": _is_restricted(resource),
    }


def _name(resource: dict[str, Any]) -> tuple[str, str | None]:
    names = [as_object(n, "Patient.name") for n in as_list(resource.get("name"), "Patient.name")]
    # The official name if there is one (US Core), else the first with a family name.
    chosen = next((n for n in names if n.get("use") == "official" and n.get("family")), None)
    chosen = chosen or next((n for n in names if n.get("family")), None)
    if chosen is None:
        raise MappingError("Patient.name.family", "a family name is required", code="required")
    given = [g for g in as_list(chosen.get("given"), "Patient.name.given") if isinstance(g, str)]
    return str(chosen["family"]), " ".join(given) if given else None
