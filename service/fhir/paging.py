"""Paging a search from where the last page ended (keyset), not by how many matches to skip.

With `_offset=n` a page is "skip n matches": a resource arriving or retracted between two pages shifts the next
one, so a client polling newest first sees a match twice or never, and the database reads and throws away the n
rows. The `next` link carries instead a `_cursor`: the last match's sort key and resource id, and the next page
starts right after them in the index. Used for the `_lastUpdated` sorts (and the default, which is
`_lastUpdated`): a resource's last_updated is never null. The `date` sorts keep `_offset`: clinical dates can be
null, and the two databases order nulls differently.

The cursor is opaque to clients (FHIR: follow the links as given) and carries nothing but a time, an id we
assigned, the sort and the position; a client that changes it only moves where its own page starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_

from service.db.cursor import decode_cursor, encode_cursor

KEYSET_SORTS = frozenset({None, "_lastUpdated", "-_lastUpdated"})
_MAX_POSITION = 10**9


@dataclass(frozen=True)
class Cursor:
    sort: str | None
    position: int  # how many matches come before the page (the total on the last page, the previous link)
    last_updated: datetime
    resource_id: str

    def encode(self) -> str:
        return encode_cursor(self.sort or "", self.position, self.last_updated.isoformat(), self.resource_id)


def decode(value: str) -> Cursor:
    """The cursor a `next` link carries; ValueError for anything we did not write."""
    try:
        sort, position, last_updated, resource_id = decode_cursor(value, 4)
        moment = datetime.fromisoformat(last_updated)
    except (ValueError, TypeError) as error:
        raise ValueError("not a cursor of ours") from error
    valid = (
        (sort or None) in KEYSET_SORTS
        and isinstance(position, int)
        and 0 <= position < _MAX_POSITION
        and moment.tzinfo is not None
        and isinstance(resource_id, str)
        and 0 < len(resource_id) <= 64
    )
    if not valid:
        raise ValueError("not a cursor of ours")
    return Cursor(sort or None, position, moment, resource_id)


def after(cursor: Cursor, key: Any, resource_id: Any) -> Any:
    """Rows beyond the cursor in the search's order: key ascending or descending, ties by resource id ascending."""
    beyond = key < cursor.last_updated if (cursor.sort or "").startswith("-") else key > cursor.last_updated
    return or_(beyond, and_(key == cursor.last_updated, resource_id > cursor.resource_id))
