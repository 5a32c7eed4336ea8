"""A database that cannot be reached is a 503 with Retry-After, not a 500.

Without this, a request that meets a dropped connection (a backend terminated, a failover, a restart, the pool
exhausted) ends in the catch-all handler as "500 Internal error": clients and the sync peers treat that as a bug
and do not retry. The unit of work rolled back (every store function commits once, at its end), so nothing was
written and a retry is safe; pool_pre_ping replaces the dead connections on the next checkout.

The handler is registered for the connection-level errors only; every other database error (IntegrityError,
DataError, ProgrammingError, ...) still reaches the catch-all handler as a 500, because it is a bug.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.api.problems import problem_response
from service.audit_trail import RequestContext, record_failure

logger = logging.getLogger("tandem.errors")
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_TYPES: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


def is_database_unavailable(error: BaseException) -> bool:
    """A lost or unobtainable connection (or a serialization failure/deadlock a retry resolves)."""
    if isinstance(error, UNAVAILABLE_TYPES):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def _on_database_unavailable(request: Request, error: Exception) -> Response:
    request_id = getattr(request.state, "request_id", None)
    # The exception type only: its text can hold SQL with parameters (patient data).
    logger.warning("database unavailable: %s", type(error).__name__, extra={"request_id": request_id, "status": 503})
    ctx: RequestContext | None = getattr(request.state, "ctx", None)
    if ctx is not None:
        try:  # the failed attempt is audited when the database answers again for this one write
            record_failure(request.app.state.engine, ctx, 503)
        except SQLAlchemyError:
            logger.warning("could not audit the failed attempt: database unavailable", extra={"request_id": request_id})
    response = problem_response(
        request,
        503,
        "Service unavailable",
        f"the database is unavailable; nothing was stored. Retry in {RETRY_AFTER_SECONDS} seconds",
        [],
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def install_database_error_handler(app: FastAPI) -> None:
    for error_type in UNAVAILABLE_TYPES:
        app.add_exception_handler(error_type, _on_database_unavailable)
