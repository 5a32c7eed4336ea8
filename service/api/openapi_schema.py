"""The OpenAPI document, with bodies and errors under their real media types.

FastAPI files a response `model` under application/json; our errors are application/problem+json, so the
schema is moved there once the document is generated, and FHIR bodies are listed as application/fhir+json.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.api.operation_outcome import FHIR_JSON
from service.api.problems import PROBLEM_JSON


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for item in document.get("paths", {}).values():
                for operation in item.values():
                    for response in operation.get("responses", {}).values():
                        _move_problem_schema(response.get("content", {}))
                    if _document_fhir_body(operation.get("requestBody", {}).get("content", {})):
                        _document_fhir_errors(operation.get("responses", {}))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_fhir_body(content: dict[str, Any]) -> bool:
    """A body that also takes a FHIR resource is listed under application/fhir+json too."""
    choices = content.get("application/json", {}).get("schema", {}).get("oneOf", [])
    fhir = [c for c in choices if c.get("$ref", "").endswith("/FhirResource")]
    if fhir:
        content[FHIR_JSON] = {"schema": fhir[0]}
    return bool(fhir)


# A refused FHIR body is answered in FHIR: an OperationOutcome (service/api/problems.py picks the format).
OPERATION_OUTCOME_SCHEMA = {
    "type": "object",
    "description": "FHIR R4 OperationOutcome: sent instead of problem+json when the request body was FHIR",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {"type": "array", "items": {"type": "object"}},
    },
}


def _document_fhir_errors(responses: dict[str, Any]) -> None:
    for status, response in responses.items():
        if status.startswith("4") and PROBLEM_JSON in response.get("content", {}):
            response["content"][FHIR_JSON] = {"schema": OPERATION_OUTCOME_SCHEMA}


def _move_problem_schema(content: dict[str, Any]) -> None:
    if PROBLEM_JSON in content and "application/json" in content:
        content[PROBLEM_JSON] = content.pop("application/json")
