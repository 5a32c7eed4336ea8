"""What each target lets us write, from its CapabilityStatement (fetched once, cached), and how we write each
record kind there: the natural resources, a documented fallback, or `not_supported` with the reason. The kinds and
their variants are the record⇄FHIR table's (service/record_fhir.py); this module only decides, from data.

Idempotent writes need one of two things per resource type:
- `search-create`: the type is created and searchable by `identifier`: search by our identifier first, create
  only when nothing matches (a lost create is found by the same search on the retry);
- `put-client-id`: the type accepts update-as-create (`updateCreate`): PUT under our deterministic id.
A type offering neither cannot be written without risking duplicates, and is treated as not writable.
One record at a time, conditional create is not used: it needs the same `identifier` search, so it would add
nothing but atomicity, which the per-patient ordering already gives us. Many records at a time (batch mode,
batching.deliver_plans_batched) it replaces the search: where the target takes `batch` Bundles and declares
`conditionalCreate` for the type, each create is a Bundle entry with `ifNoneExist: identifier=<ours>`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fhir_mappings import SYSTEM, writable_types
from service.record_fhir import Variant, kind_fhir

Strategy = Literal["search-create", "put-client-id"]
Mapping = Literal["natural", "fallback", "not_supported"]
CAPABILITY_TTL_SECONDS = 3600.0
# How CapabilityStatements name the Bulk Data kick-off (Oracle Health "export", sekmet "$export"; Epic's Group has
# "group-export").
EXPORT_NAMES = frozenset({"export", "$export", "patient-export"})


@dataclass(frozen=True)
class TypeSupport:
    writes: frozenset[str]
    identifier_search: bool
    update_create: bool
    conditional_create: bool = False  # creates may carry If-None-Exist (and it is the identifier search)
    # What a pull may ask of the type: `search-type` declared, and the search parameters declared for it (a strict
    # EHR refuses any other; Epic offers no `_lastUpdated`, Oracle Health wants a patient on clinical searches).
    searchable: bool = False
    search_params: frozenset[str] = frozenset()

    @property
    def strategy(self) -> Strategy | None:
        if "create" in self.writes and self.identifier_search:
            return "search-create"
        if "update" in self.writes and self.update_create:
            return "put-client-id"
        return None


@dataclass(frozen=True)
class Capabilities:
    types: dict[str, TypeSupport]
    batch: bool
    transaction: bool
    software: str | None = None
    # Bulk Data $export kick-off levels the target declares ("system", "patient", "group").
    export_levels: frozenset[str] = frozenset()

    def support(self, resource_type: str) -> TypeSupport:
        return self.types.get(resource_type, TypeSupport(frozenset(), False, False))

    def strategy(self, resource_type: str) -> Strategy | None:
        return self.support(resource_type).strategy

    def why_not(self, resource_type: str) -> str:
        support = self.support(resource_type)
        if not support.writes:
            return f"the target accepts no {resource_type} writes"
        if "create" in support.writes and not support.identifier_search and not support.update_create:
            return (
                f"the target creates {resource_type} but cannot search it by identifier nor update-as-create it, "
                "so a retried create could duplicate it"
            )
        return f"the target cannot write {resource_type} idempotently ({', '.join(sorted(support.writes))} only)"


def parse_capabilities(statement: dict[str, Any]) -> Capabilities:
    writable = writable_types(statement)
    types: dict[str, TypeSupport] = {}
    levels: set[str] = set()
    for rest in statement.get("rest") or []:
        if not isinstance(rest, dict) or rest.get("mode") != "server":
            continue
        for resource in rest.get("resource") or []:
            if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
                continue
            name = resource["type"]
            params = {p.get("name") for p in resource.get("searchParam") or [] if isinstance(p, dict)}
            interactions = {i.get("code") for i in resource.get("interaction") or [] if isinstance(i, dict)}
            operations = {str(o.get("name")) for o in resource.get("operation") or [] if isinstance(o, dict)}
            if name == "Patient" and operations & EXPORT_NAMES:
                levels.add("patient")
            if name == "Group" and operations & {*EXPORT_NAMES, "group-export"}:
                levels.add("group")
            types[name] = TypeSupport(
                writes=frozenset(writable.get(name, set())),
                identifier_search="identifier" in params,
                update_create=resource.get("updateCreate") is True,
                conditional_create=resource.get("conditionalCreate") is True and "identifier" in params,
                searchable="search-type" in interactions,
                search_params=frozenset(p for p in params if isinstance(p, str)),
            )
        system_operations = {str(o.get("name")) for o in rest.get("operation") or [] if isinstance(o, dict)}
        if system_operations & EXPORT_NAMES:
            levels.add("system")
    system = writable.get(SYSTEM, set())
    software = (statement.get("software") or {}).get("name") if isinstance(statement.get("software"), dict) else None
    return Capabilities(
        types=types,
        batch="batch" in system,
        transaction="transaction" in system,
        software=software,
        export_levels=frozenset(levels),
    )


# ---- decisions per record kind ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindDecision:
    kind: str
    mapping: Mapping
    strategies: dict[str, Strategy] = field(default_factory=dict)
    reason: str | None = None
    # Optional resources left out because the target cannot take them (e.g. score Observations).
    left_out: tuple[str, ...] = ()
    variant: Variant | None = None  # what is sent; None when nothing is

    @property
    def sent_types(self) -> frozenset[str]:
        return frozenset(self.strategies)


def decide(kind: str, capabilities: Capabilities) -> KindDecision:
    """The variant of the kind (record⇄FHIR table, service/record_fhir.py) this target can take, natural first."""
    table = kind_fhir(kind)
    natural = table.natural if table is not None else None
    if table is None or natural is None:
        return KindDecision(kind, "not_supported", reason=f"{kind} are not sent to EHRs")
    missing = [t for t in natural.required if capabilities.strategy(t) is None]
    if not missing:
        strategies = {
            t: s for t in (*natural.required, *natural.optional) if (s := capabilities.strategy(t)) is not None
        }
        left_out = tuple(t for t in natural.optional if t not in strategies)
        return KindDecision(kind, "natural", strategies, left_out=left_out, variant=natural)
    reason = "; ".join(capabilities.why_not(t) for t in missing)
    fallback = table.fallback
    if fallback is not None:
        fallback_missing = [t for t in fallback.required if capabilities.strategy(t) is None]
        if not fallback_missing:
            strategies = {t: s for t in fallback.required if (s := capabilities.strategy(t)) is not None}
            reason = f"{reason}: sending {fallback.description}"
            return KindDecision(kind, "fallback", strategies, reason=reason, variant=fallback)
        reason += "; fallback (" + fallback.description + ") impossible: "
        reason += "; ".join(capabilities.why_not(t) for t in fallback_missing)
    return KindDecision(kind, "not_supported", reason=reason)


# ---- cache ------------------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    statement: dict[str, Any]
    fetched_at: float


class CapabilityCache:
    """CapabilityStatements per target (keyed by base URL too, so a changed URL is refetched), with a TTL."""

    def __init__(self, ttl: float = CAPABILITY_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, target_id: str, base_url: str, fetch: Callable[[], dict[str, Any]]) -> Capabilities:
        key = (target_id, base_url)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() - entry.fetched_at < self.ttl:
                return parse_capabilities(entry.statement)
        statement = fetch()
        with self._lock:
            self._entries[key] = _Entry(statement, self._clock())
            self.fetches += 1
        return parse_capabilities(statement)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CAPABILITIES = CapabilityCache()
