"""Shared checks: R4 validity by fhirkit and a resolver that maps our own references back to record ids."""

from __future__ import annotations

from typing import Any

import fhirkit

from fhir_mappings import parse_reference, to_json
from fhir_mappings.release import Resource


def r4_json(resource: Resource) -> dict[str, Any]:
    """The resource's R4 JSON, after fhirkit (an independent R4 4.0.1 implementation) found no error in it."""
    data = to_json(resource)
    errors = [str(i) for i in fhirkit.validate(data) if i.severity == "error"]
    assert not errors, (data["resourceType"], errors)
    return data


def own_id(reference: str) -> str | None:
    """Our references carry the record id as the FHIR id (relative or absolute)."""
    parsed = parse_reference(reference)
    return parsed[1] if parsed else None
