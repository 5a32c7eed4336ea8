"""The error raised when a FHIR resource cannot be taken in, located FHIR-style for an OperationOutcome."""

from __future__ import annotations


class IntakeError(ValueError):
    """location is a FHIRPath-like pointer, e.g. QuestionnaireResponse.item[3].answer[0]."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.detail = message
