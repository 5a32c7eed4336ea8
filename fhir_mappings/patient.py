"""Patient ⇄ FHIR Patient: the US Core elements identifier (MRNs), name, gender, birthDate, and what a hospital
sends besides (every name, telecom, address, contact, communication, deceased[x]), served back as sent."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from .codes import MEDICAL_RECORD_NUMBER, RESTRICTED, RESTRICTED_CODES, V2_IDENTIFIER_TYPE, V3_CONFIDENTIALITY
from .errors import MappingError
from .identity import base_resource, day, source_from
from .reading import as_list, as_object, expect_type, full_date
from .records import PatientRecord
from .release import Address, ContactPoint, HumanName, Patient, PatientCommunication, PatientContact, build

_MR_TYPE = {
    "coding": [{"system": V2_IDENTIFIER_TYPE, "code": MEDICAL_RECORD_NUMBER[0], "display": MEDICAL_RECORD_NUMBER[1]}]
}
_GENDERS = frozenset({"female", "male", "other", "unknown"})
# The R4 core extension that marks a veterinary patient (http://hl7.org/fhir/R4/extension-patient-animal.html).
_ANIMAL = "http://hl7.org/fhir/StructureDefinition/patient-animal"
# Where the patient lives by the clock: the HL7 extension (an IANA zone as valueCode), as R4 has no element for it.
TIME_ZONE = "http://hl7.org/fhir/StructureDefinition/timezone"
# R4 dateTime (datatypes.html#dateTime): partial dates, or a time that then carries an offset.
_FHIR_DATE_TIME = re.compile(
    r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?"
)
# Repeating elements kept and served back as sent: (FHIR element, record field).
_KEPT = (("telecom", "telecom"), ("address", "addresses"), ("contact", "contacts"), ("communication", "communication"))
_DATATYPES: dict[str, type[BaseModel]] = {
    "name": HumanName,
    "telecom": ContactPoint,
    "address": Address,
    "contact": PatientContact,
    "communication": PatientCommunication,
}
# Identifier type labels that mean "medical record number" when no coding is sent (Epic: "MRN").
_MRN_LABELS = frozenset({"MRN", "MR", "MEDICAL RECORD NUMBER"})


# Where the service records a patient it creates itself (no sender): see service/records/base.py.
OWN_SOURCE_SYSTEM = "urn:tandem:record"


def patient_resource(record: PatientRecord, *, canonical_base: str) -> Patient:
    """Patient identity belongs to the hospital: the Patient carries the hospital's identifiers (the sender's id
    and the MRNs) and, only when it has none, ours. Our record id is the resource id either way. The names,
    telecom, addresses, contacts and languages are served back as the sender wrote them."""
    resource = base_resource("Patient", canonical_base, "patient", record, f"Patient {display_name(record)}")
    ours, source = resource["identifier"]
    hospital = [] if source["system"] == OWN_SOURCE_SYSTEM else [source]
    hospital += [{"use": "usual", "type": _MR_TYPE, "system": i.system, "value": i.value} for i in record.identifiers]
    resource["identifier"] = hospital or [ours]
    resource["name"] = list(record.names) or [_name_of(record)]
    resource["gender"] = record.sex
    if record.birth_date is not None:
        resource["birthDate"] = day(record.birth_date)
    if record.deceased_at is not None:
        # UTC as "Z", as fhir.resources writes it (identity.instant); any other offset as sent.
        resource["deceasedDateTime"] = re.sub(r"\+00:00$", "Z", record.deceased_at)
    elif record.deceased:
        resource["deceasedBoolean"] = True
    for element, field in _KEPT:
        if values := list(getattr(record, field)):
            resource[element] = values
    if record.time_zone is not None:
        resource["extension"] = [{"url": TIME_ZONE, "valueCode": record.time_zone}]
    if record.restricted:
        label = {"system": V3_CONFIDENTIALITY, "code": RESTRICTED[0], "display": RESTRICTED[1]}
        resource["meta"] = {**resource["meta"], "security": [label]}
    return build(Patient, resource)


def display_name(record: PatientRecord) -> str:
    parts = [p for p in (record.given_name, record.family_name) if p]
    return " ".join(parts) if parts else record.name_text or "(no name)"


def _name_of(record: PatientRecord) -> dict[str, Any]:
    name: dict[str, Any] = {"use": "official"}
    if record.family_name is not None:
        name["family"] = record.family_name
    if record.given_name is not None:
        name["given"] = [record.given_name]
    if record.name_text is not None:
        name["text"] = record.name_text
    return name


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
    """A PatientCreate body from any R4 Patient that identifies a person: a name with a family or given part or a
    text; gender, where missing, is 'unknown', and identifiers may be absent, as R4 permits (US Core asks for one,
    but the sender chose to create: the patient is then known by Tandem's id alone and matches no MRN). MRNs
    are the identifiers `is_mrn` recognises; a confidentiality label R or V in meta.security makes the patient
    restricted; names, telecom, addresses, contacts and languages are kept as sent, after checking each against
    its R4 datatype."""
    expect_type(resource, "Patient")
    _refuse_animal(resource)
    identifiers = [
        as_object(raw, f"Patient.identifier[{i}]")
        for i, raw in enumerate(as_list(resource.get("identifier"), "Patient.identifier"))
    ]
    mrns = []
    for i, identifier in enumerate(identifiers):
        if is_mrn(identifier, mrn_systems):
            if not identifier.get("system") or not identifier.get("value"):
                raise MappingError(f"Patient.identifier[{i}]", "an MRN needs both system and value")
            mrns.append({"system": identifier["system"], "value": identifier["value"]})
    names = kept_datatypes(resource, "name")
    family, given, text = _name(names)
    gender = resource.get("gender", "unknown")
    if gender not in _GENDERS:
        raise MappingError(
            "Patient.gender",
            f"{gender!r} is not an R4 administrative gender; send female, male, other or unknown",
            code="code-invalid",
        )
    body: dict[str, Any] = {
        "source": source_from(
            resource, canonical_base, "patient", source_system, skip=lambda i: is_mrn(i, mrn_systems)
        ),
        "identifiers": mrns,
        "family_name": family,
        "given_name": given,
        "name_text": text,
        "birth_date": full_date(resource["birthDate"], "Patient.birthDate") if "birthDate" in resource else None,
        "sex": gender,
        "restricted": _is_restricted(resource),
        "names": names,
        **_deceased(resource),
        "time_zone": _time_zone(resource),
    }
    for element, field in _KEPT:
        body[field] = kept_datatypes(resource, element)
    return body


def kept_datatypes(resource: dict[str, Any], element: str) -> list[dict[str, Any]]:
    """A repeating element kept as sent, each entry checked against its R4 datatype; a wrong shape is refused
    naming the entry's element (`Patient.telecom[1].value`)."""
    model = _DATATYPES[element]
    kept = []
    for i, raw in enumerate(as_list(resource.get(element), f"Patient.{element}")):
        entry = as_object(raw, f"Patient.{element}[{i}]")
        try:
            model.model_validate(entry)
        except ValidationError as error:
            detail = error.errors(include_url=False, include_input=False)[0]
            where = ".".join([f"Patient.{element}[{i}]", *(str(p) for p in detail["loc"] if not str(p).isdigit())])
            raise MappingError(where, f"not a valid R4 {model.__name__}: {detail['msg']}", code="structure") from None
        kept.append(entry)
    return kept


def _refuse_animal(resource: dict[str, Any]) -> None:
    for i, raw in enumerate(as_list(resource.get("extension"), "Patient.extension")):
        if isinstance(raw, dict) and raw.get("url") == _ANIMAL:
            raise MappingError(
                f"Patient.extension[{i}]",
                "this Patient is an animal (patient-animal extension); the programme treats people",
                code="not-supported",
            )


def _time_zone(resource: dict[str, Any]) -> str | None:
    """The timezone extension's valueCode (whether it names an IANA zone, the service's PatientFields checks)."""
    for i, raw in enumerate(as_list(resource.get("extension"), "Patient.extension")):
        if isinstance(raw, dict) and raw.get("url") == TIME_ZONE:
            value = raw.get("valueCode")
            if not isinstance(value, str) or not value.strip():
                raise MappingError(
                    f"Patient.extension[{i}].valueCode", "the time zone is an IANA zone code, e.g. America/Chicago"
                )
            return value
    return None


def _deceased(resource: dict[str, Any]) -> dict[str, Any]:
    """deceasedBoolean or deceasedDateTime (R4 dateTime: a year, year-month, date, or a time with offset)."""
    if "deceasedDateTime" in resource:
        value = resource["deceasedDateTime"]
        if not isinstance(value, str) or not _FHIR_DATE_TIME.fullmatch(value):
            raise MappingError(
                "Patient.deceasedDateTime",
                f"{value!r} is not an R4 dateTime (YYYY, YYYY-MM, YYYY-MM-DD or a time with its offset)",
                code="value",
            )
        return {"deceased": True, "deceased_at": value}
    value = resource.get("deceasedBoolean", False)
    if not isinstance(value, bool):
        raise MappingError("Patient.deceasedBoolean", "expected true or false", code="structure")
    return {"deceased": value, "deceased_at": None}


def _name(names: list[dict[str, Any]]) -> tuple[str | None, str | None, str | None]:
    """(family, given, text) of the name the patient is known by: the official one if there is one (US Core),
    else the first that names the person at all. A name needs a family or given part or a text."""
    usable = [n for n in names if n.get("family") or n.get("given") or n.get("text")]
    chosen = next((n for n in usable if n.get("use") == "official"), None) or next(iter(usable), None)
    if chosen is None:
        raise MappingError(
            "Patient.name",
            "a patient needs a name with a family or given part, or the whole name as text",
            code="required",
        )
    given = [g for g in chosen.get("given") or [] if isinstance(g, str)]
    family, text = chosen.get("family"), chosen.get("text")
    return (
        family if isinstance(family, str) else None,
        " ".join(given) if given else None,
        text if (isinstance(text, str) and not family and not given) else None,
    )
