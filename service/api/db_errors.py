"""A database that cannot be reached is a 503 with Retry-After, not a 500.

Without this, a request that meets a dropped connection (a backend terminated, a failover, a restart, the pool
exhausted) ends in the catch-all handler as "500 Internal error": clients and the sync peers treat that as a bug
and do not retry. These errors are raised before the commit (the edge commits the unit of work last, after the
answer is built; a failure of COMMIT itself is CommitOutcomeUnknown, said as such), so the unit rolled back,
nothing was written and a retry is safe; pool_pre_ping replaces the dead connections on the next checkout.

Only the connection-level errors count; every other database error (IntegrityError, DataError,
ProgrammingError, ...) is still a 500, because it is a bug. Each surface renders the 503 in its own format
(service/api/refusals.py translates, service/api/surfaces.py dispatches).
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.errors import ServiceUnavailable

logger = logging.getLogger("tandem.errors")
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_TYPES: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


def is_database_unavailable(error: BaseException) -> bool:
    """A lost or unobtainable connection (or a serialization failure/deadlock a retry resolves)."""
    if isinstance(error, UNAVAILABLE_TYPES):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def database_unavailable(error: BaseException, request_id: str | None) -> ServiceUnavailable:
    """What the caller is told; logged with the exception type only (its text can hold SQL with patient data)."""
    logger.warning("database unavailable: %s", type(error).__name__, extra={"request_id": request_id, "status": 503})
    return ServiceUnavailable(
        f"the database is unavailable; nothing was stored. Retry in {RETRY_AFTER_SECONDS} seconds",
        RETRY_AFTER_SECONDS,
    )
