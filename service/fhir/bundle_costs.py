"""What a batch or transaction Bundle may ask for: bounded before the work and while the answer is built.

One Bundle can carry hundreds of searches, each a page of resources (issue #16, finding 8). Before any entry runs,
the resources the entries can return are added up — a search counts its page size (doubled with _include), a
history its longest answer, anything else one — and a Bundle over TANDEM_MAX_BUNDLE_RESOURCES is refused (413).
The response is measured as it is built and refused once it passes TANDEM_MAX_BUNDLE_RESPONSE_BYTES; a
transaction is then rolled back (nothing written). The rate limiter counts each entry as a request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from service.errors import TooCostly
from service.settings import Settings

HISTORY_RESOURCES = 100  # interactions.MAX_HISTORY: the most versions a history answers with

# The rate limiter's hook for one request: take n more requests from the caller's allowance (429 when short).
ChargeRequests = Callable[[int], None]


def entry_resources(entry: Any, settings: Settings) -> int:
    """The most resources this entry can hand back; a malformed entry counts one (it is refused on its own)."""
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict) or request.get("method") != "GET":
        return 1
    parts = urlsplit(str(request.get("url") or ""))
    path = [p for p in parts.path.split("/") if p]
    if len(path) == 3 and path[2] == "_history":
        return HISTORY_RESOURCES
    if len(path) != 1:
        return 1
    params = parse_qsl(parts.query)
    asked = next((v for k, v in params if k == "_count"), "")
    count = int(asked) if asked.isdigit() and len(asked) <= 6 else settings.default_page_size
    page = max(1, min(count, settings.max_page_size))
    return page * 2 if any(k == "_include" for k, _ in params) else page


def refuse_if_costly(entries: list[Any], settings: Settings) -> None:
    """Before any entry runs: the sum over entries of what each can return must fit the limit."""
    total = sum(entry_resources(entry, settings) for entry in entries)
    limit = settings.max_bundle_resources
    if total > limit:
        raise TooCostly(
            f"the Bundle's {len(entries)} entries can return up to {total} resources (searches count their _count "
            f"page size); TANDEM_MAX_BUNDLE_RESOURCES allows {limit}: split it or lower _count"
        )


class ResponseBudget:
    """The response's size, added up entry by entry as it is built (compact JSON, as close as it gets cheaply)."""

    def __init__(self, settings: Settings) -> None:
        self.limit = settings.max_bundle_response_bytes
        self.used = 0

    def add(self, n: int, entry: dict[str, Any]) -> dict[str, Any]:
        self.used += len(json.dumps(entry, separators=(",", ":"), default=str))
        if self.used > self.limit:
            raise TooCostly(
                f"the Bundle's response passed {self.used} bytes at entry {n}; TANDEM_MAX_BUNDLE_RESPONSE_BYTES "
                f"allows {self.limit}: split it or lower _count"
            )
        return entry
