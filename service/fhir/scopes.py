"""SMART App Launch scopes on top of roles: a token must both have a role allowed here and a scope for it.

v2 scopes (`system/Observation.rs`, `user/*.cruds`) and their v1 forms (`.read`, `.write`, `.*`) are accepted.
patient/ scopes are refused here: the facade serves a care team, not a single patient's app.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.errors import NotPermitted

LETTERS = {"read": "r", "vread": "r", "history": "r", "search": "s", "create": "c", "update": "u", "delete": "d"}
V1 = {"read": "rs", "write": "cud", "*": "cruds"}


def scope_allows(scopes: Iterable[str], resource_type: str, interaction: str) -> bool:
    letter = LETTERS[interaction]
    for scope in scopes:
        context, _, rest = scope.partition("/")
        resource, _, permissions = rest.partition(".")
        if context not in ("user", "system") or resource not in ("*", resource_type):
            continue
        permissions = permissions.split("?", 1)[0]  # v2 granular constraints narrow; we do not widen on them
        granted = V1.get(permissions, permissions)
        if set(granted) <= set("cruds") and letter in granted:
            return True
    return False


def require_scope(scopes: Iterable[str], resource_type: str, interaction: str) -> None:
    if not scope_allows(scopes, resource_type, interaction):
        raise NotPermitted(
            f"the token's scopes do not allow {interaction} on {resource_type}; "
            f"ask for e.g. system/{resource_type}.{LETTERS[interaction]}"
        )
