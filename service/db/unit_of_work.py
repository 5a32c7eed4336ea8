"""The unit of work: one database transaction, opened and finished by the edge.

The edge is whatever a unit of work is for: a request (service/api/deps.py, service/web/deps.py), a CLI command,
a sweep chunk, a sync claim or a pulled resource. It commits when its work succeeded and rolls back when it
raised. Domain functions take the unit as their session and never commit (they may flush); `commit()` on a unit
refuses, so a service function cannot end its caller's transaction by accident.

Derived data (a patient's plan status and the CarePlan/Flag projection carrying it) is refreshed from what is
stored. A write asks for it with `defer_refresh`; the pending refreshes run once per key, in the order they were
first asked for, at `refresh_pending()`, which every reader of derived data calls before it reads, and at
`complete()`, before the commit. A request that writes once therefore refreshes right after its write; a Bundle of
many entries for one patient refreshes that patient once, before the first entry that reads the result. Nothing
here watches SQL: the pending set is this attribute, and the calls are explicit.

Rows that nothing in the unit reads by the ORM (the FHIR projection's versions and search tokens, the audit trail,
the resources as received) are inserted together: `insert_rows` keeps them, and they are written as one multi-row
INSERT per table by `write_inserts`, which their readers call first (the projection's readers: search, read,
history, the refresh), before a savepoint (and at its end, so a batch entry's rows stay its own) and before the
commit. A Bundle of 1,000 entries then sends a few INSERTs instead of thousands.

What the caller is told depends on where a failure happened, so `complete()` separates the steps: a failure while
refreshing or flushing is before the commit (nothing was stored); a failure of COMMIT itself (the connection lost
mid-commit) leaves the outcome unknown, and raises CommitOutcomeUnknown rather than pretending either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from service.db.memo import forget
from service.errors import CommitOutcomeUnknown

logger = logging.getLogger(__name__)

Refresh = Callable[["UnitOfWork"], None]


class UnitOfWork(Session):
    """A session whose transaction belongs to the edge. Objects stay readable after the commit (no expiry), so
    an answer built before it needs no read after it."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self.pending_refreshes: dict[Hashable, Refresh] = {}
        self.pending_inserts: dict[Any, list[dict[str, Any]]] = {}  # table -> rows, in the order first asked
        self.commit_steps: dict[Hashable, Refresh] = {}  # run once each, after the refreshes, before the commit

    def defer_refresh(self, key: Hashable, refresh: Refresh) -> None:
        """Ask for `refresh` before derived data is next read and before commit; once per key."""
        if key not in self.pending_refreshes:
            self.pending_refreshes[key] = refresh

    def refresh_pending(self) -> None:
        """Run the refreshes asked for so far (a refresh that asks for another runs it too)."""
        while self.pending_refreshes:
            key = next(iter(self.pending_refreshes))
            self.pending_refreshes.pop(key)(self)

    def at_commit(self, key: Hashable, step: Refresh) -> None:
        """Ask for `step` once, after the last refresh and before the commit (what follows from everything the unit
        wrote, e.g. subscription events: service/subscriptions/events.py); once per key."""
        if key not in self.commit_steps:
            self.commit_steps[key] = step

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part that may fail alone (a batch entry): its rows and its pending refreshes are undone together."""
        before = dict(self.pending_refreshes)
        steps_before = dict(self.commit_steps)
        self.write_inserts()  # what came before is not the savepoint's to undo
        try:
            with self.begin_nested():
                yield
                self.write_inserts()
        except BaseException:
            self.pending_refreshes = before
            self.commit_steps = steps_before
            self.pending_inserts.clear()
            forget(self)  # what the savepoint found may be gone with it
            raise

    def insert_later(self, table: Any, rows: list[dict[str, Any]]) -> None:
        self.pending_inserts.setdefault(table, []).extend(rows)

    def write_inserts(self) -> None:
        """The rows kept by insert_rows, one INSERT per table."""
        while self.pending_inserts:
            table = next(iter(self.pending_inserts))
            rows = self.pending_inserts.pop(table)
            super().execute(insert(table), rows)

    def commit(self) -> None:
        raise TypeError("the edge commits a unit of work (unit_of_work() or the request dependency), not its users")

    def rollback(self) -> None:
        self.pending_refreshes.clear()
        self.commit_steps.clear()
        self.pending_inserts.clear()
        forget(self)
        super().rollback()

    def complete(self) -> None:
        """Refresh, flush, commit. Up to the flush a failure means nothing was stored; COMMIT's own failure does not."""
        self.refresh_pending()
        while self.commit_steps:
            key = next(iter(self.commit_steps))
            self.commit_steps.pop(key)(self)
            self.refresh_pending()
        self.write_inserts()
        self.flush()
        try:
            super().commit()
        except SQLAlchemyError as error:
            # Type only: the message can carry SQL with parameters.
            logger.warning("commit failed, outcome unknown: %s", type(error).__name__)
            raise CommitOutcomeUnknown() from error


def refresh_pending(session: Session) -> None:
    """Before reading derived data (plan statuses, CarePlans, Flags): the refreshes the unit's writes asked for."""
    if not isinstance(session, UnitOfWork):
        raise TypeError("derived data is read inside a unit of work: open one with unit_of_work()")
    session.refresh_pending()


def insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows nothing reads back by the ORM: together with the unit's others before they are read (see the
    module's note), or at once in a session that is not a unit of work."""
    if not rows:
        return
    if isinstance(session, UnitOfWork):
        session.insert_later(table, rows)
    else:
        session.execute(insert(table), rows)


def write_inserts(session: Session) -> None:
    """Before reading a table whose rows insert_rows keeps (the projection, the audit trail, what was received)."""
    if isinstance(session, UnitOfWork):
        session.write_inserts()


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[UnitOfWork]:
    """One unit of work: committed when the block ends normally, rolled back when it raises."""
    uow = UnitOfWork(engine)
    try:
        yield uow
        uow.complete()
    except BaseException:
        _quietly(uow.rollback, "rollback")
        raise
    finally:
        _quietly(uow.close, "close")


def _quietly(step: Callable[[], None], name: str) -> None:
    """A rollback or close that meets a dead connection: the outcome was already decided (and answered), and the
    pool replaces the connection on its next checkout, so a traceback would only alarm."""
    try:
        step()
    except SQLAlchemyError as error:
        logger.warning("unit of work %s failed on a lost connection: %s", name, type(error).__name__)
