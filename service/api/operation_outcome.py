"""Errors as FHIR R4 OperationOutcome, for callers that speak FHIR (application/fhir+json)."""

from __future__ import annotations

from typing import Any

from service.errors import FieldProblem

FHIR_JSON = "application/fhir+json"

# HTTP status -> OperationOutcome.issue.code (R4 value set issue-type).
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    422: "processing",
    428: "required",
    429: "throttled",
}


def operation_outcome(status: int, detail: str, problems: list[FieldProblem]) -> dict[str, Any]:
    code = ISSUE_CODES.get(status, "exception")
    issues = [
        {"severity": "error", "code": p.issue_code or code, "diagnostics": p.message, "expression": [p.field]}
        for p in problems
    ] or [{"severity": "error", "code": code, "diagnostics": detail}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def wants_fhir(content_type: str | None, accept: str | None) -> bool:
    """A request that sent FHIR, or asked for it, gets its errors in FHIR."""
    return any(value is not None and FHIR_JSON in value for value in (content_type, accept))
