"""The JSON API's errors: RFC 9457 problem+json (the surface of every route that names no other, and of unknown paths).

A caller that sent a FHIR body to an /api operation that takes one, or asked for FHIR (Accept), gets the same
error as an OperationOutcome: that is content negotiation on the request, documented per operation in the
OpenAPI document (service/api/openapi_schema.py), not a guess from the path.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from service.api.fhir_formats import MEDIA_TYPES, NotAcceptable, render, response_format
from service.api.operation_outcome import operation_outcome, wants_fhir
from service.api.surfaces import Surface
from service.errors import InvalidRequest, TandemError

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. vital_signs.0.systolic_mmhg or query.limit")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


def problem_response(request: Request, error: TandemError) -> Response:
    if wants_fhir(request.headers.get("content-type"), request.headers.get("accept")):
        try:
            fmt = response_format(request.headers.get("accept"), request.query_params.get("_format"))
        except NotAcceptable:
            fmt = "json"  # the refusal itself must still be readable
        return Response(
            render(operation_outcome(error), fmt), status_code=error.status_code, media_type=MEDIA_TYPES[fmt]
        )
    problems = error.problems if isinstance(error, InvalidRequest) else []
    body = Problem(
        title=error.title,
        status=error.status_code,
        detail=error.message,
        request_id=getattr(request.state, "request_id", None),
        errors=[FieldError(field=p.field, message=p.message) for p in problems],
    )
    return JSONResponse(body.model_dump(), status_code=error.status_code, media_type=PROBLEM_JSON)


API_SURFACE = Surface("api", problem_response)


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": description}
    for status, description in {
        400: "The request cannot be read (a body that is not UTF-8, a NUL character in the URL)",
        401: "Missing, malformed, expired or untrusted bearer token",
        403: "The token's role may not do this",
        404: "No such record in the caller's tenant",
        413: "Request body too large",
        422: "The request is invalid (`errors` names each field), or its body is not valid JSON (`errors` names "
        "the line and column)",
    }.items()
}
WRITE_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    409: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Conflicts with a stored record"},
    415: {
        "model": Problem,
        "content": {PROBLEM_JSON: {}},
        "description": "The body is not sent as JSON (Content-Type: application/json)",
    },
}
UPDATE_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    **WRITE_ERROR_RESPONSES,
    412: {
        "model": Problem,
        "content": {PROBLEM_JSON: {}},
        "description": "If-Match is not the current version",
    },
    428: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "If-Match is required"},
}
