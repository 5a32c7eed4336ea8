"""Any exception an edge meets, as the TandemError its caller is told about: one translation for every surface.

The surfaces (problem+json on /api, OperationOutcome on /fhir, HTML on the pages) only render what `refusal`
returns; none of them inspects the exception itself, so a status, a message and an issue code are decided once.
"""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.api.db_errors import database_unavailable, is_database_unavailable
from service.audit_trail import RequestContext, record_failure
from service.errors import (
    CommitOutcomeUnknown,
    FieldProblem,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchRoute,
    TandemError,
    UnsupportedMediaType,
)

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Tags of bodies that accept more than one shape (our JSON record, or a FHIR resource).
BODY_SHAPE_TAGS = ("record", "fhir")
# Starlette's and FastAPI's own HTTP errors (a 400 for an unreadable body, a 415): the status is all they say.
HTTP_ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 413: "too-costly"}
# pydantic error type -> OperationOutcome issue code (R4 issue-type); anything else is a bad `value`.
VALIDATION_ISSUE_CODES = {"missing": "required", "extra_forbidden": "structure", "json_invalid": "structure"}
logger = logging.getLogger("tandem.errors")


def refusal(request: Request, error: Exception) -> TandemError:
    """The error as its caller will be told it (never the exception's own text unless it is ours to show)."""
    if isinstance(error, TandemError):
        return error
    if isinstance(error, RequestValidationError):
        return _invalid_request(request, error)
    if isinstance(error, StarletteHTTPException):
        return _http_error(request, error)
    request_id = getattr(request.state, "request_id", None)
    if is_database_unavailable(error):
        return database_unavailable(error, request_id)
    # The exception's message can quote SQL parameters or key values (a unique violation names the MRN): log
    # its type and where it was raised, never its text. The request id lets operators find the log line.
    frames = "".join(traceback.format_tb(error.__traceback__))
    logger.error("unhandled %s\n%s", type(error).__name__, frames, extra={"request_id": request_id})
    return InternalError("the service failed; quote the request id to support")


def audit_failure(request: Request, status: int) -> None:
    """A failed attempt on patient data is audited in its own transaction (the request's work rolled back)."""
    ctx: RequestContext | None = getattr(request.state, "ctx", None)
    if ctx is None:
        return
    try:
        record_failure(request.app.state.engine, ctx, status)
    except (SQLAlchemyError, CommitOutcomeUnknown):
        # The database that failed the request may be the one we would write to; the answer must still go out.
        logger.error("could not audit a failed request", extra={"request_id": ctx.request_id})


def request_field(loc: tuple[int | str, ...]) -> str:
    # Body fields are named as the client wrote them (without the body-shape tag of a union body);
    # query and header parameters keep their prefix.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    if parts and parts[0] in BODY_SHAPE_TAGS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _invalid_request(request: Request, error: RequestValidationError) -> TandemError:
    details = error.errors()
    if any(_unread_body(e) for e in details):
        sent = request.headers.get("content-type")
        how = f"as {sent}" if sent else "without a Content-Type"
        return UnsupportedMediaType(f"the body was sent {how}; send it as JSON, with Content-Type: application/json")
    return InvalidRequest([_field_problem(e, error.body) for e in details])


def _unread_body(detail: Any) -> bool:
    """FastAPI hands the body's raw bytes to validation when its Content-Type is not JSON (strict content type):
    that is a body in the wrong format (415), not a wrong value in it."""
    return tuple(detail["loc"])[:1] == ("body",) and isinstance(detail.get("input"), bytes)


def _field_problem(detail: Any, body: Any) -> FieldProblem:
    loc = tuple(detail["loc"])
    if detail.get("type") == "json_invalid" and isinstance(body, str) and len(loc) == 2 and isinstance(loc[1], int):
        # FastAPI locates broken JSON by a character offset (`body.20`): a person looks for a line and column.
        line, column = text_position(body, loc[1])
        reason = (detail.get("ctx") or {}).get("error", "JSON decode error")
        return FieldProblem("body", f"not valid JSON at line {line}, column {column}: {reason}", "structure")
    return FieldProblem(
        request_field(loc),
        str(detail["msg"]).removeprefix("Value error, "),
        VALIDATION_ISSUE_CODES.get(str(detail.get("type")), "value"),
    )


def text_position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset, as editors and json.JSONDecodeError count them."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def _http_error(request: Request, error: StarletteHTTPException) -> TandemError:
    detail = error.detail if isinstance(error.detail, str) else "request refused"
    if error.status_code == 404:
        return NoSuchRoute(detail)
    if error.status_code == 405:
        return MethodNotAllowed(detail, allowed_methods(request))
    translated = TandemError(
        detail, issue_code=getattr(error, "issue_code", None) or HTTP_ISSUE_CODES.get(error.status_code, "exception")
    )
    translated.status_code = error.status_code
    translated.title = HTTPStatus(error.status_code).phrase
    return translated


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this path (Starlette's Allow names only the first route
    whose path matched; RFC 9110 wants every method of the path)."""
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.router.routes
        )
    ]
