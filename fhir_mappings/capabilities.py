"""What an EHR lets us write, read from its CapabilityStatement (pure: the caller fetches and caches it)."""

from __future__ import annotations

from typing import Any, Final

# Key of the system-level interactions (batch, transaction, ...) in writable_types' result; resource type
# names are upper camel case, so it cannot collide with one.
SYSTEM: Final = "system"
_WRITES: Final = frozenset({"create", "update", "patch", "delete"})
_SYSTEM_WRITES: Final = frozenset({"batch", "transaction"})


def writable_types(capability_statement: dict[str, Any]) -> dict[str, set[str]]:
    """Resource type → write interactions of the server ("create", "update", "patch", "delete",
    "conditional-create", "conditional-update"), plus SYSTEM → {"batch", "transaction"} as advertised.

    Types the server only reads are absent. Conditional interactions count only alongside the plain one.
    """
    result: dict[str, set[str]] = {}
    system: set[str] = set()
    for rest in capability_statement.get("rest") or []:
        if not isinstance(rest, dict) or rest.get("mode") != "server":
            continue
        system |= {str(i.get("code")) for i in rest.get("interaction") or [] if isinstance(i, dict)} & _SYSTEM_WRITES
        for resource in rest.get("resource") or []:
            if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
                continue
            codes = {i.get("code") for i in resource.get("interaction") or [] if isinstance(i, dict)}
            writes = {str(c) for c in codes & _WRITES}
            if "create" in writes and resource.get("conditionalCreate") is True:
                writes.add("conditional-create")
            if "update" in writes and resource.get("conditionalUpdate") is True:
                writes.add("conditional-update")
            if writes:
                result.setdefault(resource["type"], set()).update(writes)
    result[SYSTEM] = system
    return result
