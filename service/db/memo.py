"""What a unit of work has looked up and will ask again: a Bundle's every entry names the same patient, the same
enrolment and the same sync targets. Each answer is kept for the rest of the unit and forgotten when the unit, or
the savepoint it was found in, rolls back (a record found there may be gone). Only lookups whose answer cannot
change within the unit are kept: a record that exists keeps existing (corrections keep the row), and targets are
changed by an administrator's own request (their writes forget them: `forget`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

_MEMO = "tandem.memo"
T = TypeVar("T")


def memo(session: Session) -> dict[Hashable, Any]:
    """The unit's answers by key (the session's own dict: a plain Session keeps them until it closes)."""
    found: dict[Hashable, Any] = session.info.setdefault(_MEMO, {})
    return found


def remembered(session: Session, key: Hashable, look_up: Callable[[], T]) -> T:
    """The unit's answer under key, looked up the first time it is asked."""
    known = memo(session)
    if key not in known:
        known[key] = look_up()
    found: T = known[key]
    return found


def forget(session: Session, *, key_prefix: Hashable | None = None) -> None:
    """Drop every answer (a rollback), or those whose key is a tuple starting with key_prefix."""
    if key_prefix is None:
        session.info.pop(_MEMO, None)
        return
    kept = memo(session)
    for key in [k for k in kept if isinstance(k, tuple) and k[:1] == (key_prefix,)]:
        del kept[key]


# Answers an intake counts from a patient's stored records (a visit's number by date). Unlike a found record they
# change when a record changes: the intake adds what it stores, and every update forgets them all.
COUNTED = "counted from stored records"
