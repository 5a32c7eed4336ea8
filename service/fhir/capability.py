"""The CapabilityStatement, generated from what the facade implements (a test exercises every declaration)."""

from __future__ import annotations

from typing import Any

import fhir_mappings as fm
from service.fhir.search import DATE_PARAMETERS, supported_parameters
from service.fhir.types import FHIR_TYPES

SEARCH_TYPES = {
    "_id": "token",
    "_lastUpdated": "date",
    "identifier": "token",
    "status": "token",
    "patient": "reference",
    "subject": "reference",
    "code": "token",
    "category": "token",
}
STATIC_TYPES = ("Questionnaire", "StructureDefinition", "CodeSystem")


def capability_statement(base: str, canonical_base: str, software_version: str) -> dict[str, Any]:
    resources = []
    for fhir_type in FHIR_TYPES.values():
        interactions = ["read", "vread", "history-instance", "search-type"]
        if fhir_type.writable:
            interactions += ["create", "update"]
        if fhir_type.correctable:
            interactions.append("delete")
        entry: dict[str, Any] = {
            "type": fhir_type.name,
            "interaction": [{"code": code} for code in interactions],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalCreate": fhir_type.writable,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            # DELETE is a correction: the record is kept as entered-in-error and its resources answer 410.
            "searchInclude": [f"{fhir_type.name}:patient"] if fhir_type.name != "Patient" else [],
            "searchParam": [
                {
                    "name": name,
                    "type": SEARCH_TYPES.get(
                        name, "date" if name in DATE_PARAMETERS.get(fhir_type.name, set()) else "token"
                    ),
                }
                for name in supported_parameters(fhir_type.name)
            ],
        }
        resources.append(entry)
    for name in STATIC_TYPES:
        resources.append(
            {
                "type": name,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [{"name": "_id", "type": "token"}, {"name": "url", "type": "uri"}],
            }
        )
    resources.append(
        {
            "type": "AuditEvent",
            "interaction": [{"code": "search-type"}],
            "documentation": "Administrators only: the audit trail, one event per patient (IHE BALP).",
            "searchParam": [{"name": "patient", "type": "reference"}, {"name": "date", "type": "date"}],
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "kind": "instance",
        "software": {"name": "Tandem", "version": software_version},
        "implementation": {"description": "Tandem combined ketamine/esketamine + CBT care service", "url": base},
        "fhirVersion": fm.FHIR_VERSION,
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Every interaction needs an OAuth2 bearer token (SMART v2 scopes, tenant-scoped). "
                "Searches take _count, _offset, _sort, _include, _summary=count and _total=none|estimate|accurate: "
                "Bundle.total is given with _total=accurate or _summary=count, and otherwise only when the page "
                "shows it (the last page); the next link says whether more matches follow. Follow paging links "
                "as given: with the _lastUpdated sorts (and the default) they carry an opaque _cursor that starts "
                "the next page where the last one ended.",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer JWTs from the hospital's identity provider; scopes like "
                    "system/Observation.rs or user/*.cruds, on top of the roles ehr-system, clinician, coordinator.",
                },
                "resource": resources,
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }
