"""Database access: engines, the unit of work and the column types every table shares."""

from service.db.engine import make_engine
from service.db.types import UtcDateTime
from service.db.unit_of_work import UnitOfWork, unit_of_work

__all__ = ["UnitOfWork", "UtcDateTime", "make_engine", "unit_of_work"]
