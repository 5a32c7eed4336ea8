"""Domain errors. Services raise these; each edge (JSON API, FHIR facade, pages) renders them in its format.

Every error carries what its caller needs in any format: an HTTP status, a title, a message safe to show, and the
FHIR OperationOutcome issue code (R4 value set issue-type, http://hl7.org/fhir/R4/valueset-issue-type.html) that
says what went wrong, independent of the status (a 422 may be `required`, `code-invalid` or `invariant`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


class TandemError(Exception):
    """Base of every error the service raises on purpose; the message is safe to show to the caller."""

    status_code = 400
    title = "Bad request"
    issue_code = "invalid"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, message: str, *, issue_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if issue_code is not None:
            self.issue_code = issue_code

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer needs whatever its format (Retry-After, WWW-Authenticate, Allow)."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class NotAuthenticated(TandemError):
    status_code = 401
    title = "Not authenticated"
    issue_code = "login"

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "WWW-Authenticate": 'Bearer error="invalid_token"'}


class NotPermitted(TandemError):
    status_code = 403
    title = "Not permitted"
    issue_code = "forbidden"


class PatientRestricted(NotPermitted):
    """The patient's record is restricted (confidentiality R): hidden until a clinician breaks the glass."""

    title = "Restricted patient"
    issue_code = "suppressed"

    def __init__(self, patient_id: str) -> None:
        self.patient_id = patient_id
        super().__init__(
            f"patient {patient_id!r} is restricted: a clinician may break the glass with "
            f"POST /api/v1/patients/{patient_id}/break-the-glass and a reason; access is time-boxed and audited"
        )


class RecordNotFound(TandemError):
    """Also what another tenant's record looks like: the two must be indistinguishable."""

    status_code = 404
    title = "Not found"
    issue_code = "not-found"

    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"no {kind} with id {record_id!r}")


class RecordConflict(TandemError):
    status_code = 409
    title = "Conflict"
    issue_code = "conflict"


class NotConfigured(TandemError):
    """The operator has not configured what this request needs (e.g. the key that seals targets' tokens)."""

    status_code = 409
    title = "Not configured"
    issue_code = "not-supported"


class RecordGone(TandemError):
    """A record removed as a correction: reads answer 410 while its history stays."""

    status_code = 410
    title = "Gone"
    issue_code = "deleted"


class NotSupported(TandemError):
    """The interaction exists, but not for this kind of resource (a derived or published one)."""

    status_code = 405
    title = "Method not allowed"
    issue_code = "not-supported"


class NoSuchRoute(TandemError):
    """No interaction at this address (the path or its method is not one the surface serves)."""

    status_code = 404
    title = "Not found"
    issue_code = "not-found"


class MethodNotAllowed(TandemError):
    """The path exists but does not take this method; Allow names every method it does take (RFC 9110)."""

    status_code = 405
    title = "Method not allowed"
    issue_code = "not-supported"

    def __init__(self, message: str, allow: list[str]) -> None:
        super().__init__(message)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Allow": ", ".join(self.allow)}


class UnsupportedMediaType(TandemError):
    """A body in a format the operation does not read (text/plain where JSON is expected, no Content-Type)."""

    status_code = 415
    title = "Unsupported media type"
    issue_code = "not-supported"


class InteractionNotImplemented(TandemError):
    """A FHIR interaction this server does not implement for any resource (whole-type or system history): not a
    missing resource (404) nor a method the path refuses (405, which must name the methods it takes)."""

    status_code = 501
    title = "Not implemented"
    issue_code = "not-supported"


class PreconditionFailed(TandemError):
    status_code = 412
    title = "Precondition failed"
    issue_code = "conflict"


class VersionMismatch(PreconditionFailed):
    def __init__(self, current: int, expected: str) -> None:
        super().__init__(
            f'If-Match {expected} does not match the current version W/"{current}"; read the record again and retry'
        )


class TooCostly(TandemError):
    """The request asks for more work or a larger answer than the service gives one request."""

    status_code = 413
    title = "Request too costly"
    issue_code = "too-costly"


class TooManyRequests(TandemError):
    status_code = 429
    title = "Too many requests"
    issue_code = "throttled"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(TandemError):
    """Something the request needs (the database) is unreachable for now; a retry after Retry-After may succeed."""

    status_code = 503
    title = "Service unavailable"
    issue_code = "transient"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InternalError(TandemError):
    """Our own failure; the message never echoes the exception (it may hold SQL or patient data)."""

    status_code = 500
    title = "Internal error"
    issue_code = "exception"


class CommitOutcomeUnknown(ServiceUnavailable):
    """The database connection failed during COMMIT: the write may or may not be stored. Said as it is, never as
    "nothing was stored": a retry that names the same record (its identifier, or a conditional create) is safe,
    a retry without one may store it twice."""

    def __init__(self) -> None:
        super().__init__(
            "the database connection was lost while committing: the outcome is unknown (the write may have been "
            "stored). Retrying with the same identifier (or a conditional create, If-None-Exist) is safe",
            retry_after=5,
        )


class VersionRequired(TandemError):
    status_code = 428
    title = "Precondition required"
    issue_code = "required"


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a request, located by the path of the field (e.g. vital_signs.0.systolic_mmhg)."""

    field: str
    message: str
    issue_code: str | None = None  # the OperationOutcome issue code, when not its error's (e.g. not-supported)


class InvalidRequest(TandemError):
    status_code = 422
    title = "Invalid request"
    issue_code = "invalid"

    def __init__(self, problems: list[FieldProblem]) -> None:
        first = problems[0] if problems else FieldProblem("body", "invalid")
        super().__init__(f"{first.field}: {first.message}")
        self.problems = problems or [first]


def invalid(field_name: str, message: str, *, issue_code: str | None = None) -> InvalidRequest:
    return InvalidRequest([FieldProblem(field_name, message, issue_code)])


def validation_problems(error: ValidationError) -> list[FieldProblem]:
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in detail["loc"]) or "body"
        message = detail["msg"].removeprefix("Value error, ")
        problems.append(FieldProblem(where, message))
    return problems
