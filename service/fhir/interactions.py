"""The FHIR interactions, as functions of (session, request context, …) → Outcome.

The HTTP routes and the batch/transaction processor both call these, so an entry of a Bundle behaves exactly
like the same request sent alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.access import ensure_visible, hidden_patients
from service.errors import (
    NotSupported,
    PreconditionFailed,
    RecordGone,
    RecordNotFound,
    VersionMismatch,
    VersionRequired,
    invalid,
)
from service.fhir.conditional_references import resolve_conditional_references
from service.fhir.disclosure import WITHHELD, disclose
from service.fhir.search import current_patients, narrow_to_chained_patients, run_search
from service.fhir.search_parameters import SearchQuery, parse_search
from service.fhir.types import FHIR_TYPES, FhirType
from service.patient_refresh import refresh_before_reading, refresh_derived
from service.projection.tables import FhirResourceVersion
from service.projection.writes import retract, written_version
from service.record_store import store
from service.records.base import SourceIdentifier

MAX_HISTORY = 100


@dataclass
class Outcome:
    status: int
    resource: dict[str, Any] | None = None
    version_id: int | None = None
    last_updated: datetime | None = None
    location: str | None = None  # relative: Type/id/_history/vid
    headers: dict[str, str] = field(default_factory=dict)
    matched: bool = False  # a conditional create found this existing resource
    notice: str | None = None  # why the resource is withheld (the caller may write but not read it)
    # Elements of the sent resource that were not used (FHIRPath): OperationOutcome warnings for the sender.
    not_used: tuple[str, ...] = ()


def fhir_type(name: str) -> FhirType:
    found = FHIR_TYPES.get(name)
    if found is None:
        raise RecordNotFound("resource type", name)
    return found


def _current(session: Session, tenant_id: str, resource_type: str, resource_id: str) -> FhirResourceVersion | None:
    refresh_before_reading(session, resource_type)
    r = FhirResourceVersion
    return session.exec(
        select(r).where(
            col(r.tenant_id) == tenant_id,
            col(r.resource_type) == resource_type,
            col(r.resource_id) == resource_id,
            col(r.is_current).is_(True),
        )
    ).first()


def _just_written(session: Session, tenant_id: str, resource_type: str, resource_id: str) -> FhirResourceVersion | None:
    """A write's answer: the version it stored, without reading it back (or the stored one, when it stored none)."""
    refresh_derived(session, resource_type)  # a CarePlan written by the refresh the write asked for
    written = written_version(session, tenant_id, resource_type, resource_id)
    return written if written is not None else _current(session, tenant_id, resource_type, resource_id)


def _outcome(row: FhirResourceVersion, status: int = 200) -> Outcome:
    return Outcome(
        status=status,
        resource=row.body,
        version_id=row.version_id,
        last_updated=row.last_updated,
        location=f"{row.resource_type}/{row.resource_id}/_history/{row.version_id}",
    )


def read(session: Session, ctx: RequestContext, resource_type: str, resource_id: str) -> Outcome:
    fhir_type(resource_type)
    ctx.intent = AuditIntent("read", f"fhir/{resource_type}", record_id=resource_id)
    row = _current(session, ctx.tenant_id, resource_type, resource_id)
    if row is None:
        raise RecordNotFound(resource_type, resource_id)
    ctx.intent.patient_id = row.patient_id
    ensure_visible(session, ctx, row.patient_id)
    if row.deleted:
        raise RecordGone(f"{resource_type}/{resource_id} was deleted")
    disclose(session, ctx, resource_type, [row], how="read")
    return _outcome(row)


def vread(session: Session, ctx: RequestContext, resource_type: str, resource_id: str, version_id: str) -> Outcome:
    fhir_type(resource_type)
    ctx.intent = AuditIntent("read", f"fhir/{resource_type}", record_id=resource_id)
    refresh_before_reading(session, resource_type)
    r = FhirResourceVersion
    row = (
        session.exec(
            select(r).where(
                col(r.tenant_id) == ctx.tenant_id,
                col(r.resource_type) == resource_type,
                col(r.resource_id) == resource_id,
                col(r.version_id) == int(version_id),
            )
        ).first()
        if version_id.isascii() and version_id.isdigit() and len(version_id) <= 9
        else None
    )
    if row is None:
        raise RecordNotFound(resource_type, f"{resource_id}/_history/{version_id}")
    ctx.intent.patient_id = row.patient_id
    ensure_visible(session, ctx, row.patient_id)
    if row.deleted:
        raise RecordGone(f"version {version_id} of {resource_type}/{resource_id} is a deletion")
    disclose(session, ctx, resource_type, [row], how="read")
    return _outcome(row)


def history(session: Session, ctx: RequestContext, resource_type: str, resource_id: str) -> list[FhirResourceVersion]:
    """Every version, newest first (a deletion is a version too)."""
    fhir_type(resource_type)
    ctx.intent = AuditIntent("read", f"fhir/{resource_type}", record_id=resource_id)
    refresh_before_reading(session, resource_type)
    r = FhirResourceVersion
    rows = list(
        session.exec(
            select(r)
            .where(
                col(r.tenant_id) == ctx.tenant_id,
                col(r.resource_type) == resource_type,
                col(r.resource_id) == resource_id,
            )
            .order_by(col(r.version_id).desc())
            .limit(MAX_HISTORY)
        )
    )
    if not rows:
        raise RecordNotFound(resource_type, resource_id)
    ctx.intent.patient_id = rows[0].patient_id
    ensure_visible(session, ctx, rows[0].patient_id)
    disclose(session, ctx, resource_type, rows, how="read")
    return rows


@dataclass
class SearchResult:
    query: SearchQuery
    total: int | None  # None: not counted (see search.SearchPage)
    matches: list[FhirResourceVersion]
    included: list[FhirResourceVersion]
    more: bool = False  # a next page exists


def search(
    session: Session,
    ctx: RequestContext,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
) -> SearchResult:
    fhir_type(resource_type)
    ctx.intent = AuditIntent("list", f"fhir/{resource_type}")
    settings = ctx.settings
    query = parse_search(
        resource_type, params, max_count=settings.max_page_size, default_count=settings.default_page_size, strict=strict
    )
    for patient_id in query.patients:
        ensure_visible(session, ctx, patient_id)
    query.hidden_patients = hidden_patients(session, ctx)
    if query.chained:
        narrow_to_chained_patients(session, ctx.tenant_id, query)
    refresh_before_reading(session, resource_type)
    found = run_search(session, ctx.tenant_id, query)
    matches = found.matches
    included = (
        current_patients(session, ctx.tenant_id, {m.patient_id for m in matches if m.patient_id})
        if query.include_patient
        else []
    )
    # One audit row per patient whose data the search returned (IHE BALP: one event per patient); the included
    # Patients are those same patients, and are left out for a caller that may not search Patient.
    disclose(session, ctx, resource_type, matches, how="search")
    if included and not disclose(session, ctx, "Patient", included, how="include"):
        included = []
    return SearchResult(query, found.total, matches, included, more=found.more)


def create(
    session: Session,
    ctx: RequestContext,
    resource_type: str,
    resource: dict[str, Any],
    *,
    if_none_exist: str | None = None,
    default_source: tuple[str, str | None] | None = None,
) -> Outcome:
    """Create through the domain store; a resend (same identifier) or a matching If-None-Exist returns what exists.

    default_source names a resource that carries no business identifier (a file's Type/id, a Bundle entry's
    urn:uuid), so sending it again finds the same record."""
    target = _writable(resource_type, resource)
    ctx.intent = AuditIntent("create", f"fhir/{resource_type}")
    existing = _existing(session, ctx, target, if_none_exist) if if_none_exist is not None else None
    if existing is not None:
        return existing  # a match is returned without judging the body, as FHIR conditional create does
    resource = resolve_conditional_references(session, ctx, resource, resource_type)
    payload = target.inbound(session, ctx, resource)  # type: ignore[misc]
    not_used = ctx.received.unused if ctx.received is not None else ()
    if if_none_exist is not None:
        payload = _with_source_from_criteria(payload, if_none_exist)
    if default_source is not None and default_source[1] and getattr(payload, "source", True) is None:
        payload = payload.model_copy(
            update={"source": SourceIdentifier(system=default_source[0], value=default_source[1])}
        )
    public, created = store.create_record(session, ctx, target.record_kind(payload), payload)
    served_id = target.resource_id(payload, public.id)
    row = _just_written(session, ctx.tenant_id, resource_type, served_id)
    assert row is not None, "a stored record is projected in the same transaction"
    if served_id != public.id:
        # The store audited the record it made (a questionnaire response); the client was given another resource
        # made from it (its total Observation): the trail names that one too, as the client knows it.
        ctx.intent = AuditIntent("create", f"fhir/{resource_type}", record_id=served_id, patient_id=row.patient_id)
        record_success(session, ctx, status_code=201 if created else 200)
    outcome = _written(session, ctx, row, status=201 if created else 200)
    outcome.not_used = not_used
    return outcome


def _written(session: Session, ctx: RequestContext, row: FhirResourceVersion, *, status: int) -> Outcome:
    """What a write stored, answered back only to a caller that may also read it (a derived score, say)."""
    outcome = _outcome(row, status=status)
    if not disclose(session, ctx, row.resource_type, [row], how="written"):
        outcome.resource, outcome.notice = None, WITHHELD
    return outcome


def _writable(resource_type: str, resource: dict[str, Any]) -> FhirType:
    target = fhir_type(resource_type)
    if resource.get("resourceType") != resource_type:
        raise invalid("resourceType", f"the body is a {resource.get('resourceType')}, the URL says {resource_type}")
    if not target.writable:
        raise NotSupported(f"{resource_type} is derived from other records and cannot be written here")
    return target


def _criteria(criteria: str) -> list[tuple[str, str]]:
    pairs = [part.split("=", 1) for part in criteria.lstrip("?").split("&") if "=" in part]
    return [(name, unquote_plus(value)) for name, value in pairs]


def _existing(session: Session, ctx: RequestContext, target: FhirType, criteria: str) -> Outcome | None:
    """If-None-Exist: one match is returned (200), several refuse the create (412), none lets it proceed."""
    found = parse_search(target.name, _criteria(criteria), max_count=2, default_count=2, strict=True)
    refresh_before_reading(session, target.name)
    page = run_search(session, ctx.tenant_id, found)
    if len(page.matches) > 1 or page.more:
        raise PreconditionFailed("If-None-Exist matched several resources; make the criteria more selective")
    if not page.matches:
        return None
    match = page.matches[0]
    ensure_visible(session, ctx, match.patient_id)  # never hand back a restricted patient's resource
    outcome = _outcome(match, status=200)
    outcome.matched = True
    if not disclose(session, ctx, target.name, [match], how="match"):
        # Allowed to create, not to read: the caller learns that it exists (FHIR's answer), not what it says.
        outcome.resource, outcome.notice = None, WITHHELD
        ctx.intent = AuditIntent("create", f"fhir/{target.name}", match.resource_id, match.patient_id)
        record_success(session, ctx, status_code=200)
    return outcome


def _with_source_from_criteria(payload: Any, criteria: str) -> Any:
    """On identifier=system|value the record's source identifier becomes that identifier, so among concurrent
    duplicates the store's unique constraint (not the search above) decides: one record, the rest get it."""
    pairs = _criteria(criteria)
    if len(pairs) == 1 and pairs[0][0] == "identifier" and "|" in pairs[0][1]:
        system, value = pairs[0][1].split("|", 1)
        if system and value and hasattr(payload, "source"):
            return payload.model_copy(update={"source": SourceIdentifier(system=system, value=value)})
    return payload


def delete(session: Session, ctx: RequestContext, resource_type: str, resource_id: str) -> Outcome:
    """A record sent in error: marked entered-in-error (kept, recomputed, propagated), its resources retracted."""
    target = fhir_type(resource_type)
    if not target.correctable or target.kind is None:
        raise NotSupported(f"{resource_type} cannot be deleted; correct the records that refer to it instead")
    ctx.intent = AuditIntent("delete", f"fhir/{resource_type}", record_id=resource_id)
    record = store.locked_record(session, ctx.tenant_id, target.kind, resource_id)
    row = _current(session, ctx.tenant_id, resource_type, resource_id)
    if row is None or row.deleted:
        raise RecordNotFound(resource_type, resource_id)
    store.update_record(session, ctx, target.kind, resource_id, {"status": "entered-in-error"}, f'W/"{record.version}"')
    retract(session, tenant_id=ctx.tenant_id, record_kind=target.kind.path, record_id=resource_id)
    ctx.intent = AuditIntent("delete", f"fhir/{resource_type}", record_id=resource_id, patient_id=row.patient_id)
    record_success(session, ctx, status_code=200)
    return Outcome(status=200)


def update(
    session: Session,
    ctx: RequestContext,
    resource_type: str,
    resource_id: str,
    resource: dict[str, Any],
    *,
    if_match: str | None,
) -> Outcome:
    target = _writable(resource_type, resource)
    if not target.updatable or target.kind is None:
        raise NotSupported(
            f"{resource_type} is create-only here: POST the corrected {resource_type} (status amended or corrected)"
        )
    ctx.intent = AuditIntent("update", f"fhir/{resource_type}", record_id=resource_id)
    if resource.get("id") != resource_id:
        raise invalid("id", f"the body's id {resource.get('id')!r} is not the URL's {resource_id!r}")
    record = store.locked_record(session, ctx.tenant_id, target.kind, resource_id)
    row = _current(session, ctx.tenant_id, resource_type, resource_id)
    if row is None or row.deleted:
        raise RecordNotFound(resource_type, resource_id)
    if if_match is None:
        # Without it a client holding a stale copy (fhirpy's save(), say) silently overwrites a newer version of
        # a clinical record; R4 lets a server require it with 428 (http.html#concurrency), and the
        # CapabilityStatement says versioned-update.
        raise VersionRequired(
            f'send If-Match with the ETag of the version you edited (W/"<versionId>" from your last read of '
            f"{resource_type}/{resource_id}; in a Bundle, entry.request.ifMatch): updates never overwrite a "
            "version the client has not seen"
        )
    if store.ETAG_PATTERN.match(if_match.strip()) is None:
        raise invalid("If-Match", 'expected an ETag such as W/"3"')
    if if_match.strip().removeprefix("W/").strip('"') != str(row.version_id):
        raise VersionMismatch(row.version_id, if_match)
    resource = resolve_conditional_references(session, ctx, resource, resource_type)
    payload = target.inbound(session, ctx, resource)  # type: ignore[misc]
    not_used = ctx.received.unused if ctx.received is not None else ()
    changes = payload.model_dump(exclude={"source", *target.carried_elsewhere})
    store.update_record(session, ctx, target.kind, resource_id, changes, f'W/"{record.version}"')
    updated = _just_written(session, ctx.tenant_id, resource_type, resource_id)
    assert updated is not None
    outcome = _written(session, ctx, updated, status=200)
    outcome.not_used = not_used
    return outcome
