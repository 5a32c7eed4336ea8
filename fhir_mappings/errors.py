"""Why an incoming resource cannot become a record, and how that is told back as an R4 OperationOutcome."""

from __future__ import annotations

from typing import Any, Literal

# R4 issue-type codes we use (http://hl7.org/fhir/R4/valueset-issue-type.html): `structure` for JSON of the wrong
# shape, `required` for a missing element, `value` for a bad primitive, `code-invalid` for a code we do not know,
# `invariant` for a rule across elements, `not-supported` for a resource we understand but do not take.
IssueCode = Literal[
    "invalid", "structure", "required", "value", "invariant", "not-supported", "code-invalid", "not-found"
]


class MappingError(ValueError):
    """A resource (or part of it) we cannot take in; location is a FHIRPath-like path into the resource.

    The one error of every inbound reader (fhir_mappings and the instruments): the FHIR edge turns it into an
    OperationOutcome issue with this `code` and `expression` [location], whatever the HTTP status."""

    def __init__(self, location: str, message: str, *, code: IssueCode = "invalid") -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message
        self.code: IssueCode = code


def operation_outcome(error: MappingError) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": error.code,
                "diagnostics": error.message,
                # R4 OperationOutcome.issue.expression (FHIRPath); `location` is deprecated XPath.
                "expression": [error.location],
            }
        ],
    }
