"""The source identifiers a Bundle's entries may be stored under, so their resend lookups go out together.

What an intake takes as a record's source identifier is its own business (a business identifier, the If-None-Exist
identifier, or the entry's urn:uuid); this names every candidate. A candidate no intake takes costs a row in one
IN list, and an identifier missed here is looked up alone, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

URI_SYSTEM = "urn:ietf:rfc:3986"  # a urn:uuid fullUrl as an identifier system (RFC 3986 URI)


def sources_carried(entries: list[Any]) -> Iterator[tuple[str, str]]:
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict):
            identifiers = resource.get("identifier")
            for identifier in identifiers if isinstance(identifiers, list) else [identifiers]:
                if isinstance(identifier, dict):
                    yield from _pair(identifier.get("system"), identifier.get("value"))
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
            yield URI_SYSTEM, full_url
        request = entry.get("request")
        criteria = request.get("ifNoneExist") if isinstance(request, dict) else None
        if isinstance(criteria, str):
            for name, value in parse_qsl(criteria.lstrip("?")):
                if name == "identifier" and "|" in value:
                    yield from _pair(*value.split("|", 1))


def _pair(system: Any, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(system, str) and system and isinstance(value, str) and value:
        yield system, value
