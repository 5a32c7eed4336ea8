"""Domain errors. Services raise these; the edges (JSON API, FHIR facade, pages) translate them in one place."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


class TandemError(Exception):
    """Base of every error the service raises on purpose; the message is safe to show to the caller."""

    status_code = 400
    title = "Bad request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAuthenticated(TandemError):
    status_code = 401
    title = "Not authenticated"


class NotPermitted(TandemError):
    status_code = 403
    title = "Not permitted"


class PatientRestricted(NotPermitted):
    """The patient's record is restricted (confidentiality R): hidden until a clinician breaks the glass."""

    title = "Restricted patient"

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

    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"no {kind} with id {record_id!r}")


class RecordConflict(TandemError):
    status_code = 409
    title = "Conflict"


class NotConfigured(TandemError):
    """The operator has not configured what this request needs (e.g. the key that seals targets' tokens)."""

    status_code = 409
    title = "Not configured"


class RecordGone(TandemError):
    """A record removed as a correction: reads answer 410 while its history stays."""

    status_code = 410
    title = "Gone"


class NotSupported(TandemError):
    """The interaction exists, but not for this kind of resource (a derived or published one)."""

    status_code = 405
    title = "Method not allowed"


class PreconditionFailed(TandemError):
    status_code = 412
    title = "Precondition failed"


class VersionMismatch(PreconditionFailed):
    def __init__(self, current: int, expected: str) -> None:
        super().__init__(
            f'If-Match {expected} does not match the current version W/"{current}"; read the record again and retry'
        )


class TooCostly(TandemError):
    """The request asks for more work or a larger answer than the service gives one request."""

    status_code = 413
    title = "Request too costly"


class TooManyRequests(TandemError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VersionRequired(TandemError):
    status_code = 428
    title = "Precondition required"


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a request, located by the path of the field (e.g. vital_signs.0.systolic_mmhg)."""

    field: str
    message: str
    issue_code: str | None = None  # the OperationOutcome issue code, when not the status's (e.g. not-supported)


class InvalidRequest(TandemError):
    status_code = 422
    title = "Invalid request"

    def __init__(self, problems: list[FieldProblem]) -> None:
        first = problems[0] if problems else FieldProblem("body", "invalid")
        super().__init__(f"{first.field}: {first.message}")
        self.problems = problems or [first]


def invalid(field_name: str, message: str) -> InvalidRequest:
    return InvalidRequest([FieldProblem(field_name, message)])


def validation_problems(error: ValidationError) -> list[FieldProblem]:
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in detail["loc"]) or "body"
        message = detail["msg"].removeprefix("Value error, ")
        problems.append(FieldProblem(where, message))
    return problems
