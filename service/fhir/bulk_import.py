"""Bulk load: FHIR Bundles (batch/transaction) or NDJSON, through the same interactions as the HTTP facade.

A refused line never stops the rest; every resource is keyed by a source identifier (its own business identifier,
or the file's Type/id), so re-running the same file adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from service.audit_trail import RequestContext
from service.auth.principal import Principal
from service.db.unit_of_work import UnitOfWork, unit_of_work
from service.errors import InvalidRequest, TandemError
from service.fhir import bundles, interactions
from service.settings import Settings

IMPORT_SOURCE = "urn:tandem:import"
MAX_LINE_CHARS = 5_000_000


@dataclass
class ImportSummary:
    created: int = 0
    already_present: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    @property
    def accepted(self) -> int:
        return self.created + self.already_present


def count_units(path: Path) -> int:
    """Lines of an NDJSON file, or 1 for a Bundle: the progress bar's total."""
    if path.suffix == ".ndjson":
        with path.open(encoding="utf-8") as lines:
            return sum(1 for line in lines if line.strip())
    return 1


def import_file(
    engine: Engine,
    settings: Settings,
    *,
    tenant_id: str,
    path: Path,
    summary: ImportSummary,
    advance: Callable[[], None] = lambda: None,
) -> None:
    principal = Principal(
        subject="tandem-import", tenant_id=tenant_id, role="ehr-system", scopes=frozenset({"system/*.cruds"})
    )
    for where, resource in _resources(path, summary, advance):
        ctx = RequestContext(principal=principal, request_id=f"import:{path.name}", settings=settings)
        try:
            with unit_of_work(engine) as session:  # one unit per line or Bundle: a refused one never stops the rest
                if resource.get("resourceType") == "Bundle":
                    _bundle(session, ctx, resource, where, summary, settings)
                else:
                    _one(session, ctx, resource, summary)
        except TandemError as error:
            summary.refused.append((where, _reason(error)))
        advance()


def _resources(path: Path, summary: ImportSummary, advance: Callable[[], None]) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix != ".ndjson":
        try:
            yield path.name, json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            summary.refused.append((path.name, f"not JSON: {error}"))
            advance()
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


def _one(session: Session, ctx: RequestContext, resource: dict[str, Any], summary: ImportSummary) -> None:
    resource_type = resource["resourceType"]
    fallback = f"{resource_type}/{resource['id']}" if isinstance(resource.get("id"), str) else None
    outcome = interactions.create(session, ctx, resource_type, resource, default_source=(IMPORT_SOURCE, fallback))
    if outcome.status == 201:
        summary.created += 1
    else:
        summary.already_present += 1


def _bundle(
    session: UnitOfWork,
    ctx: RequestContext,
    bundle: dict[str, Any],
    where: str,
    summary: ImportSummary,
    settings: Settings,
) -> None:
    response = bundles.process_bundle(
        session, ctx, bundle, max_entries=settings.max_bundle_entries, authorize=lambda _type, _interaction: None
    )
    for n, entry in enumerate(response.get("entry", [])):
        status = str(entry["response"]["status"])
        if status.startswith("201"):
            summary.created += 1
        elif status.startswith("200"):
            summary.already_present += 1
        else:
            outcome = entry["response"].get("outcome", {})
            issue = (outcome.get("issue") or [{}])[0]
            summary.refused.append((f"{where} entry {n}", f"{status}: {issue.get('diagnostics', 'refused')}"))


def _reason(error: TandemError) -> str:
    if isinstance(error, InvalidRequest):
        return "; ".join(f"{p.field}: {p.message}" for p in error.problems)
    return error.message
