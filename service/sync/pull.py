"""Inbound: what the EHR recorded (patients by MRN, questionnaire results, score Observations, CBT encounters),
pulled since a cursor per target and resource type, and stored through the same domain functions as any write.

Pages are followed by `Bundle.link[next]` only (never built), and only on the target's origin. Resources are
de-duplicated by id within a run and by their source identifier across runs (`create_record` returns the stored
record for a known source), so a re-pull is idempotent. A pulled record is not echoed back to the target it came
from; resources we wrote ourselves come back as the record they were made from.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import fhir_mappings as fm
from service.audit_trail import AuditIntent, RequestContext, record_success
from service.auth.principal import Principal
from service.clock import now_utc
from service.db.unit_of_work import unit_of_work
from service.errors import InvalidRequest, RecordNotFound, TandemError
from service.intake import INTAKES, Intake, IntakeFunction, reference_resolver, take_in, with_standard_codings
from service.record_fhir import PULL_SOURCES, PullSource
from service.record_store import store
from service.record_store.kinds import RECORD_KINDS, RecordKind, kind_of
from service.records.enrollment import EnrollmentCreate
from service.records.patient import PatientCreate
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.client import FhirClient, UnsafeUrl
from service.sync.patient_links import link_pulled_patient
from service.sync.referral_changes import follow_referral
from service.sync.tables import PullCursor, RemoteResource
from service.sync.targets import referral_rule

logger = logging.getLogger("tandem.sync.pull")
PAGE_SIZE = 100
MAX_PAGES = 10_000
STRICT = {"Prefer": "handling=strict"}
# The searches a pull runs (record⇄FHIR table), in order: patients before what refers to them.
SOURCES: dict[str, PullSource] = {source.name: source for source in PULL_SOURCES}
PULL_ORDER = tuple(SOURCES)


class PullError(Exception):
    pass


@dataclass
class KindSummary:
    fetched: int = 0
    created: int = 0
    already_present: int = 0
    skipped: int = 0
    pages: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class PullSummary:
    target_id: str
    kinds: dict[str, KindSummary] = field(default_factory=dict)


def system_context(settings: Settings, tenant_id: str, target_id: str) -> RequestContext:
    principal = Principal(
        subject=f"sync:{target_id}", tenant_id=tenant_id, role="ehr-system", scopes=None, client_id=None
    )
    return RequestContext(principal=principal, request_id=str(uuid.uuid4()), settings=settings, origin_target=target_id)


def source_system(target: SyncTarget) -> str:
    """The namespace of the target's own ids in our records' `source` (value "<Type>/<id>")."""
    return target.base_url


def pull(
    engine: Engine,
    settings: Settings,
    target_id: str,
    kinds: list[str] | None = None,
    *,
    tenant_id: str | None = None,
    client: FhirClient | None = None,
    progress: Callable[[str, KindSummary], None] | None = None,
) -> PullSummary:
    with unit_of_work(engine) as session:
        target = session.get(SyncTarget, target_id)
    if target is None or (tenant_id is not None and target.tenant_id != tenant_id):
        raise RecordNotFound("EHR sync target", target_id)
    wanted = [k for k in PULL_ORDER if k in (kinds or target.pull)]
    client = client or FhirClient(target, settings)
    summary = PullSummary(target_id)
    for kind in wanted:
        result = summary.kinds[kind] = KindSummary()
        try:
            _pull_kind(engine, settings, target, client, kind, result, progress)
        except (httpx.HTTPError, PullError, UnsafeUrl) as error:
            result.errors.append(f"{type(error).__name__}: {error}")
    return summary


def _first_query(target: SyncTarget, source: PullSource, cursor: str | None) -> dict[str, str]:
    params = {"_count": str(PAGE_SIZE)}
    if cursor:
        params["_lastUpdated"] = f"gt{cursor}"
    if source.by_mrn:
        if not target.mrn_system:
            raise PullError(f"{source.name} are pulled by MRN: set the target's mrn_system")
        params["identifier"] = f"{target.mrn_system}|"
    params.update(source.search)
    return params


def _pages(client: FhirClient, resource_type: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    url: str | None = resource_type
    query: dict[str, str] | None = params
    for _ in range(MAX_PAGES):
        if url is None:
            return
        exchange = client.request("GET", url, params=query, headers=STRICT)
        if not exchange.ok or not isinstance(exchange.body, dict) or exchange.body.get("resourceType") != "Bundle":
            raise PullError(f"search {resource_type}: HTTP {exchange.status_code} {_diagnostics(exchange.body)}")
        yield exchange.body
        query = None
        url = next(
            (str(link["url"]) for link in exchange.body.get("link") or [] if link.get("relation") == "next"), None
        )
    raise PullError(f"search {resource_type}: more than {MAX_PAGES} pages")


def _pull_kind(
    engine: Engine,
    settings: Settings,
    target: SyncTarget,
    client: FhirClient,
    kind: str,
    result: KindSummary,
    progress: Callable[[str, KindSummary], None] | None,
) -> None:
    source = SOURCES[kind]
    resource_type, record_kind = source.fhir_type, KINDS[source.kind]
    with unit_of_work(engine) as session:
        row = session.get(PullCursor, (target.id, resource_type))
        cursor = row.last_updated if row else None
        session.rollback()
    seen: set[str] = set()
    newest = cursor
    for page in _pages(client, resource_type, _first_query(target, source, cursor)):
        result.pages += 1
        for entry in page.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if (entry.get("search") or {}).get("mode", "match") != "match" or not isinstance(resource, dict):
                continue
            if resource.get("resourceType") != resource_type or not resource.get("id"):
                continue
            key = f"{resource_type}/{resource['id']}"
            if key in seen:
                continue
            seen.add(key)
            result.fetched += 1
            updated = str((resource.get("meta") or {}).get("lastUpdated") or "")
            if cursor and updated and updated <= cursor:
                continue  # the target ignored _lastUpdated: already pulled
            if updated and (newest is None or updated > newest):
                newest = updated
            _store_one(engine, settings, target, record_kind, resource, result)
        if progress is not None:
            progress(kind, result)
    if newest and newest != cursor:
        with unit_of_work(engine) as session:
            row = session.get(PullCursor, (target.id, resource_type))
            if row is None:
                row = PullCursor(
                    target_id=target.id, resource_type=resource_type, last_updated=newest, updated_at=now_utc()
                )
            row.last_updated, row.updated_at = newest, now_utc()
            session.add(row)


def _ours_derived(resource: dict[str, Any], canonical_base: str) -> bool:
    """A resource we derived from one of our records (a score Observation, a vital sign): not a record itself."""
    prefix = f"{canonical_base}/identifier/"
    raw = resource.get("identifier") or []
    for identifier in [raw] if isinstance(raw, dict) else raw:
        if (
            isinstance(identifier, dict)
            and str(identifier.get("system", "")).startswith(prefix)
            and "/" in str(identifier.get("value", ""))
        ):
            return True
    return False


def _store_one(
    engine: Engine,
    settings: Settings,
    target: SyncTarget,
    record_kind: RecordKind,
    resource: dict[str, Any],
    result: KindSummary,
) -> None:
    base = settings.canonical_base
    if _ours_derived(resource, base):
        result.skipped += 1
        return
    if resource["resourceType"] == "ServiceRequest" and not fm.is_programme_referral(
        resource, base, referral_rule(target)
    ):
        result.skipped += 1  # another order of the patient (a lab, an imaging study): not ours to take
        return
    with unit_of_work(engine) as session:
        ctx = system_context(settings, target.tenant_id, target.id)
        try:
            # The target's own codes (flowsheet rows, visit types) read as the standard ones its code map names.
            standard = with_standard_codings(session, target.tenant_id, resource, target.id)
            payload, ctx.received = take_in(
                _take(resource["resourceType"]), _intake(session, target, base), standard, sent=resource
            )
        except InvalidRequest as error:
            session.rollback()
            result.skipped += 1
            result.errors.append(f"{resource['resourceType']}/{resource['id']}: {str(error)[:200]}")
            return
        if isinstance(payload, PatientCreate) and (same := link_pulled_patient(session, target, payload, resource)):
            # Tandem holds this patient by MRN: the EHR's id now names it, and no second patient is made.
            ctx.intent = AuditIntent("create", record_kind.path, record_id=same.id, patient_id=same.id)
            store.keep_received(session, ctx, record_kind, same.id)
            record_success(session, ctx, status_code=200, patient_ids=[same.id])
            result.already_present += 1
            return
        try:
            # One searched type may become several kinds (an Observation: a score or a vital sign).
            stored, created = store.create_record(session, ctx, kind_of(payload) or record_kind, payload)
            if not created and isinstance(payload, EnrollmentCreate):
                follow_referral(session, ctx, stored, payload)  # held or discharged at the EHR since
        except TandemError as error:
            session.rollback()
            result.skipped += 1
            result.errors.append(f"{resource['resourceType']}/{resource['id']}: {error}")
            return
    if created:
        result.created += 1
    else:
        result.already_present += 1


KINDS: dict[str, RecordKind] = {kind.path: kind for kind in RECORD_KINDS}


def _intake(session: Session, target: SyncTarget, base: str) -> Intake:
    """The same intake as a resource sent to us, with references and ids in the target's namespace."""

    def known(resource_type: str, remote_id: str) -> str | None:
        """A resource we wrote at the target."""
        ours: str | None = session.exec(
            select(RemoteResource.record_id).where(
                col(RemoteResource.target_id) == target.id,
                col(RemoteResource.resource_type) == resource_type,
                col(RemoteResource.remote_id) == remote_id,
                col(RemoteResource.role) == "main",
            )
        ).first()
        return ours

    source = source_system(target)
    resolve = reference_resolver(session, target.tenant_id, source_system=source, known=known)
    mrn_systems = frozenset({target.mrn_system}) if target.mrn_system else frozenset()
    return Intake(
        session,
        target.tenant_id,
        base,
        resolve,
        source_system=source,
        mrn_systems=mrn_systems,
        referral_rule=referral_rule(target),
    )


def _take(resource_type: str) -> IntakeFunction:
    # Every pulled type has its one intake (an Observation's dispatches by kind: a score, …).
    return INTAKES[resource_type]


def _diagnostics(body: Any) -> str:
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in body.get("issue") or [])[:300]
    return ""
