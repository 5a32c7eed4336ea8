"""Which elements of a sent resource its intake did not use: told back as OperationOutcome warnings.

Honest and simple: the intake reads the resource through `WatchedResource`, which notes every top-level element
looked up (`get`, `[]`, `in`); the elements never looked up were not used. Top-level only: a looked-up element
counts as used even where only part of it was (a Patient's `meta` for its security labels). Extensions are the
exception: the readers look at `extension` only for ours, so a top-level extension with another URL is reported
by its URL (`Patient.extension('http://…')`). `resourceType`, `id`, `meta` and `text` are never reported: they
name and describe the sender's copy (the narrative is regenerated from what is kept), and the whole resource is
kept as sent (service/records/received.py) anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_NEVER_REPORTED = frozenset({"resourceType", "id", "meta", "text"})


class WatchedResource(dict[str, Any]):
    """The resource as an intake sees it, noting which top-level elements were looked up."""

    def __init__(self, resource: dict[str, Any]) -> None:
        super().__init__(resource)
        self.looked_up: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.looked_up.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.looked_up.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.looked_up.add(key)
        return super().__contains__(key)

    # Whatever walks the whole resource has (for all we know) used all of it.
    def __iter__(self) -> Iterator[str]:
        self.looked_up.update(super().keys())
        return super().__iter__()

    def keys(self) -> Any:
        self.looked_up.update(super().keys())
        return super().keys()

    def items(self) -> Any:
        self.looked_up.update(super().keys())
        return super().items()

    def values(self) -> Any:
        self.looked_up.update(super().keys())
        return super().values()


def unused_elements(resource_type: str, watched: WatchedResource, canonical_base: str) -> tuple[str, ...]:
    """FHIRPath of each top-level element not used, in the resource's order; a primitive's `_x` sibling (its
    extensions) as `Type.x.extension`."""
    unused: list[str] = []
    for name, value in dict.items(watched):
        if name in _NEVER_REPORTED:
            continue
        if name in ("extension", "modifierExtension"):
            unused += [
                f"{resource_type}.{name}('{url}')"
                for url in _urls(value)
                if not url.startswith(f"{canonical_base}/") or name not in watched.looked_up
            ]
        elif name.startswith("_"):
            unused.append(f"{resource_type}.{name[1:]}.extension")
        elif name not in watched.looked_up:
            unused.append(f"{resource_type}.{name}")
    return tuple(unused)


def _urls(extensions: Any) -> list[str]:
    if not isinstance(extensions, list):
        return []
    return [str(e.get("url")) for e in extensions if isinstance(e, dict) and isinstance(e.get("url"), str)]
