"""Database access: engines, sessions and the column types every table shares."""

from service.db.engine import make_engine, session_scope
from service.db.types import UtcDateTime

__all__ = ["UtcDateTime", "make_engine", "session_scope"]
