"""Errors as FHIR R4 OperationOutcome: the FHIR facade's, a Bundle entry's, and /api's for callers that speak FHIR."""

from __future__ import annotations

from typing import Any

from service.errors import InvalidRequest, TandemError

FHIR_JSON = "application/fhir+json"


def operation_outcome(error: TandemError) -> dict[str, Any]:
    """One issue per located problem (its own code, else the error's), or one issue for the whole error."""
    problems = error.problems if isinstance(error, InvalidRequest) else []
    issues = [
        {
            "severity": "error",
            "code": p.issue_code or error.issue_code,
            "diagnostics": p.message,
            "expression": [p.field],
        }
        for p in problems
    ] or [{"severity": "error", "code": error.issue_code, "diagnostics": error.message}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def wants_fhir(content_type: str | None, accept: str | None) -> bool:
    """A request that sent FHIR, or asked for it, gets its errors in FHIR."""
    return any(value is not None and FHIR_JSON in value for value in (content_type, accept))
