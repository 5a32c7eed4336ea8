"""Helpers for FHIR facade tests: headers, resource builders."""

from __future__ import annotations

import copy
import uuid
from typing import Any

FHIR_JSON = "application/fhir+json"


def fhir_headers(auth_headers: dict[str, str], **extra: str) -> dict[str, str]:
    return {**auth_headers, "Accept": FHIR_JSON, "Content-Type": FHIR_JSON, **extra}


def patient_resource(**overrides: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {
                "system": "urn:oid:2.16.840.1.113883.3.7418.2",
                "value": f"MRN-{uuid.uuid4().hex[:8]}",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            },
        ],
        "name": [{"family": "Okonkwo", "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1979-04-12",
        **overrides,
    }


def about(resource: dict[str, Any], patient_id: str) -> dict[str, Any]:
    mine = copy.deepcopy(resource)
    mine["subject"] = {"reference": f"Patient/{patient_id}"}
    return mine
