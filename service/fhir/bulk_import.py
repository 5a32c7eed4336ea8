"""Bulk load: FHIR Bundles (batch, transaction, collection, searchset) or NDJSON, through the same interactions
as the HTTP facade.

A refused line never stops the rest; every resource is keyed by a source identifier (its own business identifier,
the file's Type/id, or with `--source` the sender's Type/id as a pull from that EHR keys it), so re-running the
same file adds nothing. References may use the sender's ids (a Bulk Data export: `Patient/<the EHR's id>`): they
resolve to what this run took in under that id, and with `--source` to what Tandem keeps from that sender. A
resource whose patient comes later in the files waits and is taken once the files are read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.audit_trail import RequestContext
from service.auth.principal import Principal
from service.db.unit_of_work import UnitOfWork, unit_of_work
from service.errors import InvalidRequest, TandemError, invalid
from service.fhir import bundles, interactions
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.pull import source_system

IMPORT_SOURCE = "urn:tandem:import"
MAX_LINE_CHARS = 5_000_000


@dataclass
class ImportSummary:
    created: int = 0
    already_present: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    not_used: list[tuple[str, str]] = field(default_factory=list)  # (where, the elements Tandem did not use)

    @property
    def accepted(self) -> int:
        return self.created + self.already_present


def count_units(path: Path) -> int:
    """The progress bar's total for a file: its lines (NDJSON), its entries (a collection or searchset Bundle,
    taken one by one) or 1 (a batch or transaction Bundle, taken whole)."""
    if path.suffix == ".ndjson":
        with path.open(encoding="utf-8") as lines:
            return sum(1 for line in lines if line.strip())
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return 1
    if isinstance(bundle, dict) and bundle.get("type") in ENTRY_BY_ENTRY and isinstance(bundle.get("entry"), list):
        return max(1, len(bundle["entry"]))
    return 1


# Bundles whose entries are resources to take one by one, as batch entries (each with its own outcome): an EHR's
# export or search result is not a request, so it has no request.method to run.
ENTRY_BY_ENTRY = ("collection", "searchset")


@dataclass
class ImportRun:
    """One `tandem import`: its report, whose ids its files use, what it took in (the sender's Type/id → our id)
    and what waits for a patient that a later line or file may bring."""

    tenant_id: str
    summary: ImportSummary = field(default_factory=ImportSummary)
    sender_namespace: str | None = None  # --source: a target's base URL, as its pull keys records
    origin_target: str | None = None  # --source named this target: what came from it is not sent back to it
    taken: dict[tuple[str, str], str] = field(default_factory=dict)
    waiting: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def known(self, resource_type: str, their_id: str) -> str | None:
        return self.taken.get((resource_type, their_id))


def sender_namespace(session: Session, tenant_id: str, source: str) -> tuple[str, str | None]:
    """`--source`: a sync target (id, name or base URL) → its namespace and id; an EHR's base URL → itself."""
    t = SyncTarget
    target = session.exec(
        select(t).where(
            col(t.tenant_id) == tenant_id,
            (col(t.id) == source) | (col(t.name) == source) | (col(t.base_url) == source.rstrip("/")),
        )
    ).first()
    if target is not None:
        return source_system(target), target.id
    if source.startswith(("https://", "http://")):
        return source.rstrip("/"), None
    raise invalid(
        "--source",
        f"{source!r} is neither a sync target of this tenant nor a URL: name a target (id or name) or give the "
        "EHR's FHIR base URL the export came from",
    )


def import_file(
    engine: Engine,
    settings: Settings,
    *,
    run: ImportRun,
    path: Path,
    advance: Callable[[], None] = lambda: None,
) -> None:
    for where, resource in _resources(path, run.summary, advance):
        _take(engine, settings, run, where, resource, may_wait=True)
        advance()


def finish_import(engine: Engine, settings: Settings, *, run: ImportRun) -> None:
    """Take what waited for a patient, now that every file was read, until a round takes nothing more."""
    while run.waiting:
        pending, run.waiting = run.waiting, []
        for where, resource in pending:
            _take(engine, settings, run, where, resource, may_wait=True)
        if len(run.waiting) == len(pending):  # nothing more arrived: what still waits is refused
            for where, resource in run.waiting:
                _take(engine, settings, run, where, resource, may_wait=False)
            run.waiting = []


def _take(
    engine: Engine, settings: Settings, run: ImportRun, where: str, resource: dict[str, Any], *, may_wait: bool
) -> None:
    principal = Principal(
        subject="tandem-import", tenant_id=run.tenant_id, role="ehr-system", scopes=frozenset({"system/*.cruds"})
    )
    ctx = RequestContext(
        principal=principal,
        request_id=f"import:{where}",
        settings=settings,
        origin_target=run.origin_target,
        sender_namespace=run.sender_namespace,
        sender_ids=run.known,
    )
    try:
        with unit_of_work(engine) as session:  # one unit per line or Bundle: a refused one never stops the rest
            if resource.get("resourceType") == "Bundle":
                _bundle(session, ctx, resource, where, run, settings)
            else:
                _one(session, ctx, resource, run, where)
    except TandemError as error:
        if may_wait and _waits_for_a_reference(error):
            run.waiting.append((where, resource))
            return
        reason = _reason(error)
        if _waits_for_a_reference(error):
            reason += (
                " (after every file of this run was read; import the resources it refers to in the same run, "
                "in any order, or name their sender with --source to use the ids Tandem keeps from it)"
            )
        run.summary.refused.append((where, reason))


def _waits_for_a_reference(error: TandemError) -> bool:
    """Refused only because what a reference names is not (yet) here: a later line may bring it."""
    return (
        isinstance(error, InvalidRequest)
        and bool(error.problems)
        and all(p.issue_code == "not-found" for p in error.problems)
    )


def _resources(path: Path, summary: ImportSummary, advance: Callable[[], None]) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix != ".ndjson":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            summary.refused.append((path.name, f"not JSON: {error}"))
            advance()
            return
        bundle = isinstance(document, dict) and document.get("resourceType") == "Bundle"
        if bundle and document.get("type") in ENTRY_BY_ENTRY:
            yield from _entries(path, document, summary, advance)
            return
        yield path.name, document
        return
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            if len(line) > MAX_LINE_CHARS:
                summary.refused.append((where, f"line longer than {MAX_LINE_CHARS} characters"))
                advance()
                continue
            try:
                resource = json.loads(line)
            except ValueError as error:
                summary.refused.append((where, f"not JSON: {error}"))
                advance()
                continue
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                summary.refused.append((where, "not a FHIR resource (no resourceType)"))
                advance()
                continue
            yield where, resource


def _entries(
    path: Path, bundle: dict[str, Any], summary: ImportSummary, advance: Callable[[], None]
) -> Iterator[tuple[str, dict[str, Any]]]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        summary.refused.append((path.name, "Bundle.entry: must be a list"))
        advance()
        return
    named = _entry_names(entries)
    for n, entry in enumerate(entries):
        where = f"{path.name} entry {n}"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            summary.refused.append((where, f"Bundle.entry[{n}].resource: no resource (nothing to import)"))
            advance()
        elif resource["resourceType"] == "OperationOutcome":
            advance()  # a searchset's warnings from the server that answered the search: not patient data
        else:
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str) and full_url in named and not isinstance(resource.get("id"), str):
                resource = {**resource, "id": named[full_url].split("/")[1]}
            yield where, _renamed(resource, named)


def _entry_names(entries: list[Any]) -> dict[str, str]:
    """An entry's urn:uuid fullUrl → Type/<its id, else the uuid>: references to it then name the entry as a
    file's Type/id does, so they resolve (and wait for it) like any sender id. The uuid is a valid FHIR id."""
    names = {}
    for entry in entries:
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(full_url, str) and full_url.startswith("urn:uuid:") and isinstance(resource, dict):
            own = resource.get("id")
            their_id = own if isinstance(own, str) else full_url.removeprefix("urn:uuid:")
            names[full_url] = f"{resource.get('resourceType')}/{their_id}"
    return names


def _renamed(value: Any, names: dict[str, str]) -> Any:
    if not names:
        return value
    if isinstance(value, dict):
        return {
            k: (names.get(v, v) if k == "reference" and isinstance(v, str) else _renamed(v, names))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return value


def _one(session: Session, ctx: RequestContext, resource: dict[str, Any], run: ImportRun, where: str) -> None:
    resource_type = resource["resourceType"]
    their_id = resource["id"] if isinstance(resource.get("id"), str) else None
    fallback = f"{resource_type}/{their_id}" if their_id else None
    outcome = interactions.create(session, ctx, resource_type, resource, default_source=(IMPORT_SOURCE, fallback))
    _taken(run, resource, outcome.location)
    if outcome.not_used:
        run.summary.not_used.append((where, ", ".join(outcome.not_used)))
    if outcome.status == 201:
        run.summary.created += 1
    else:
        run.summary.already_present += 1


def _taken(run: ImportRun, resource: Any, location: str | None) -> None:
    """What the sender called Type/id is now our record: later lines referring to it resolve to that."""
    if isinstance(resource, dict) and isinstance(resource.get("id"), str) and location:
        run.taken[(str(resource.get("resourceType")), resource["id"])] = location.split("/")[1]


def _bundle(
    session: UnitOfWork,
    ctx: RequestContext,
    bundle: dict[str, Any],
    where: str,
    run: ImportRun,
    settings: Settings,
) -> None:
    if bundle.get("type") not in ("batch", "transaction"):
        raise invalid(
            "Bundle.type",
            f"{bundle.get('type')!r}: tandem import takes batch, transaction, collection and searchset Bundles",
        )
    response = bundles.process_bundle(
        session, ctx, bundle, max_entries=settings.max_bundle_entries, authorize=lambda _type, _interaction: None
    )
    sent = bundle.get("entry") or []
    for n, entry in enumerate(response.get("entry", [])):
        status = str(entry["response"]["status"])
        warnings = [
            expression
            for issue in (entry["response"].get("outcome") or {}).get("issue", [])
            if issue.get("severity") == "warning" and status[:1] == "2"
            for expression in issue.get("expression", [])
        ]
        if warnings:
            run.summary.not_used.append((f"{where} entry {n}", ", ".join(warnings)))
        if status.startswith("201"):
            run.summary.created += 1
        elif status.startswith("200"):
            run.summary.already_present += 1
        else:
            outcome = entry["response"].get("outcome", {})
            issue = (outcome.get("issue") or [{}])[0]
            element = "".join(f"{e}: " for e in issue.get("expression") or [])
            run.summary.refused.append(
                (f"{where} entry {n}", f"{status}: {element}{issue.get('diagnostics', 'refused')}")
            )
            continue
        if n < len(sent) and isinstance(sent[n], dict):
            _taken(run, sent[n].get("resource"), entry["response"].get("location"))


def _reason(error: TandemError) -> str:
    if isinstance(error, InvalidRequest):
        return "; ".join(f"{p.field}: {p.message}" for p in error.problems)
    return error.message
