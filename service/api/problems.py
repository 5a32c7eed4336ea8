"""Errors leave the JSON API as RFC 9457 problem+json, translated here and nowhere else.

Handlers are sync on purpose: Starlette runs them in its thread pool, and auditing a failure touches the database.

A failed attempt on patient data is audited too, in its own transaction, after the request's work rolled back.
"""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from service.api.operation_outcome import operation_outcome, wants_fhir
from service.audit_trail import RequestContext, record_failure
from service.errors import FieldProblem, InvalidRequest, TandemError, TooManyRequests
from service.fhir.formats import MEDIA_TYPES, NotAcceptable, render, response_format

PROBLEM_JSON = "application/problem+json"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Tags of bodies that accept more than one shape (our JSON record, or a FHIR resource).
BODY_SHAPE_TAGS = ("record", "fhir")
logger = logging.getLogger("tandem.errors")


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


def problem_response(request: Request, status: int, title: str, detail: str, errors: list[FieldProblem]) -> Response:
    body = Problem(
        title=title,
        status=status,
        detail=detail,
        request_id=getattr(request.state, "request_id", None),
        errors=[FieldError(field=e.field, message=e.message) for e in errors],
    )
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else {}
    headers["Cache-Control"] = "no-store"
    if request.url.path.startswith("/fhir") or wants_fhir(
        request.headers.get("content-type"), request.headers.get("accept")
    ):
        outcome = operation_outcome(status, detail, errors)
        try:
            fmt = response_format(request.headers.get("accept"), request.query_params.get("_format"))
        except NotAcceptable:
            fmt = "json"  # the refusal itself must still be readable
        return Response(render(outcome, fmt), status_code=status, media_type=MEDIA_TYPES[fmt], headers=headers)
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def refused(scope: Scope, status: int, detail: str) -> Response:
    """A refusal decided by middleware, in the caller's error format."""
    return problem_response(Request(scope), status, HTTPStatus(status).phrase, detail, [])


def rate_limited(scope: Scope, retry_after: int, detail: str) -> Response:
    """The 429 the rate limiter sends, in the caller's error format."""
    response = problem_response(Request(scope), 429, "Too many requests", detail, [])
    response.headers["Retry-After"] = str(retry_after)
    return response


def _audit_failure(request: Request, status: int) -> None:
    ctx: RequestContext | None = getattr(request.state, "ctx", None)
    if ctx is None:
        return
    try:
        record_failure(request.app.state.engine, ctx, status)
    except SQLAlchemyError:
        # The database that failed the request may be the one we would write to; the answer must still go out.
        logger.error("could not audit a failed request", extra={"request_id": ctx.request_id})


def _request_field(loc: tuple[int | str, ...]) -> str:
    # Body fields are named as the client wrote them (without the body-shape tag of a union body);
    # query and header parameters keep their prefix.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    if parts and parts[0] in BODY_SHAPE_TAGS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _on_tandem_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, TandemError)
    _audit_failure(request, error.status_code)
    problems = error.problems if isinstance(error, InvalidRequest) else []
    response = problem_response(request, error.status_code, error.title, error.message, problems)
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _on_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = [
        FieldProblem(_request_field(tuple(e["loc"])), str(e["msg"]).removeprefix("Value error, "))
        for e in error.errors()
    ]
    _audit_failure(request, 422)
    first = problems[0] if problems else FieldProblem("body", "invalid")
    return problem_response(request, 422, "Invalid request", f"{first.field}: {first.message}", problems)


def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else "request refused"
    response = problem_response(request, error.status_code, HTTPStatus(error.status_code).phrase, detail, [])
    if error.status_code == 405:
        # Starlette's Allow names only the first route whose path matched; RFC 9110 wants every method of the path.
        response.headers["Allow"] = allowed_methods(request)
    return response


def allowed_methods(request: Request) -> str:
    """Every method some route of the app answers at this path (each method is tried against the routes)."""
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


def _on_unexpected(request: Request, error: Exception) -> Response:
    # Never echo the exception: it may hold SQL or patient data. The request id lets operators find the log line.
    # The exception's message can quote SQL parameters or key values (a unique violation names the MRN): log
    # its type and where it was raised, never its text.
    frames = "".join(traceback.format_tb(error.__traceback__))
    logger.error(
        "unhandled %s\n%s",
        type(error).__name__,
        frames,
        extra={"request_id": getattr(request.state, "request_id", None)},
    )
    _audit_failure(request, 500)
    return problem_response(request, 500, "Internal error", "the service failed; quote the request id to support", [])


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TandemError, _on_tandem_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": description}
    for status, description in {
        400: "The request cannot be read (a body that is not JSON, a NUL character in the URL)",
        401: "Missing, malformed, expired or untrusted bearer token",
        403: "The token's role may not do this",
        404: "No such record in the caller's tenant",
        413: "Request body too large",
        422: "The request is invalid; `errors` names each field",
    }.items()
}
WRITE_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    409: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Conflicts with a stored record"},
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
