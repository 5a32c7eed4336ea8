"""Records found by their source identifier (the sender's system|value), looked up in bulk for a Bundle.

A transaction or batch asks for each entry whether its record is already stored (a resend), first in the intake
(is this Encounter a visit we hold?), then in the store. Sent alone that is a SELECT or two an entry; a Bundle
announces the identifiers its entries carry (`expect_sources`) and the first question for a table fetches them
all with one SELECT. Answers stay in the unit's memo (service/db/memo.py): a found record keeps existing, and a
record this unit stores is noted under its identifier (`note_stored`), so "not stored" stays true until then. The
unique constraint still decides between concurrent senders: the store's conflict path asks the database afresh
(`stored_by_source(..., fresh=True)`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

from sqlmodel import Session, col, select

from service.db.memo import memo
from service.records.base import TenantRecord

R = TypeVar("R", bound=TenantRecord)

_EXPECTED = "sources expected"  # (key, tenant) -> the identifiers a Bundle's entries carry
_FETCHED = "sources fetched"  # (key, table, tenant) -> the identifiers fetched for that table
_FOUND = "by source"
# Well under SQLite's and PostgreSQL's bound parameters per statement.
_CHUNK = 500


def expect_sources(session: Session, tenant_id: str, identifiers: Iterable[tuple[str, str]]) -> None:
    """The (system, value) pairs the unit's coming writes may carry; fetched per table when first asked."""
    expected: set[tuple[str, str]] = memo(session).setdefault((_EXPECTED, tenant_id), set())
    expected.update(identifiers)


def stored_by_source(
    session: Session, table: type[R], tenant_id: str, system: str, value: str, *, fresh: bool = False
) -> R | None:
    """The tenant's record of `table` stored under system|value, or None."""
    if fresh:
        return _select(session, table, tenant_id, [(system, value)]).get((system, value))
    known = memo(session)
    key: Hashable = (_FOUND, table.__name__, tenant_id, system, value)
    if key in known:
        found: R | None = known[key]
        return found
    expected: set[tuple[str, str]] = known.get((_EXPECTED, tenant_id), set())
    fetched_key = (_FETCHED, table.__name__, tenant_id)
    if (system, value) in expected and fetched_key not in known:
        rows = _select(session, table, tenant_id, sorted(expected))
        known[fetched_key] = True
        for pair in expected:
            known[(_FOUND, table.__name__, tenant_id, *pair)] = rows.get(pair)
        return rows.get((system, value))
    row = _select(session, table, tenant_id, [(system, value)]).get((system, value))
    if row is not None:  # a record, once stored, stays; an absence may end in this unit
        known[key] = row
    return row


def note_stored(session: Session, row: TenantRecord) -> None:
    """A record this unit stored: a later question for its identifier finds it without asking the database."""
    memo(session)[(_FOUND, type(row).__name__, row.tenant_id, row.source_system, row.source_id)] = row


def _select(session: Session, table: type[R], tenant_id: str, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], R]:
    found: dict[tuple[str, str], R] = {}
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        rows = session.exec(
            select(table).where(
                col(table.tenant_id) == tenant_id,
                col(table.source_system).in_({system for system, _ in chunk}),
                col(table.source_id).in_({value for _, value in chunk}),
            )
        ).all()
        wanted = set(chunk)
        for row in rows:
            if (row.source_system, row.source_id) in wanted:
                found[(row.source_system, row.source_id)] = row
    return found
