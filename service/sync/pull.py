"""Inbound: what the EHR recorded for the patients Tandem follows there, asked as the EHR allows it.

A pull first reads the target's CapabilityStatement (the cache the push uses) and asks only what it declares:
- **Patients**: the target's patients under its MRN system (`identifier=<mrn_system>|`), then each patient Tandem
  holds with an MRN there that is still not linked, by that MRN (`identifier=<mrn_system>|<mrn>`); one Tandem
  holds by MRN is linked (service/sync/patient_links.py), never a second one.
- **Everything else is patient-scoped**: for each linked patient, a search of each pulled type by the patient
  parameter the type declares (`patient`, else `subject`) — Oracle Health refuses clinical searches without one —
  plus the source's fixed parameters (Observation `category`) where declared. A type the target does not search
  is left out and said so in the summary; one it searches but declares no patient parameter for is searched once,
  and only what is about a followed patient is taken.
- **Since the last pull**: `_lastUpdated=gt<cursor>` where the type declares it; otherwise (Epic declares it
  nowhere) a date window on the type's clinical date (`date`, `effective-time`, `authored`) from the last pull
  minus LOOKBACK (entries made late, dated earlier); otherwise the patient's whole history, which the source
  identifiers make idempotent. Cursors are per target, source and patient, so a newly followed patient gets their
  history.
Pages are followed by `Bundle.link[next]` only (never built), on the target's origin; results are de-duplicated by
id within a run and by source identifier across runs. A 429 or 503 is waited out (Retry-After, capped) and asked
again; the client keeps the target's ceiling of requests per second. A result about another patient (an EHR that
ignored the patient parameter) is not taken. Every resource goes through the one intake for its type
(service/sync/taking.py); what is refused is quarantined with its reason and raw resource, and the cursor moves on.
The population mode for back-loading a new programme is Bulk Data $export (service/sync/export.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.db.unit_of_work import unit_of_work
from service.errors import RecordNotFound
from service.intake.patient_match import patients_with_mrn
from service.record_fhir import PULL_SOURCES, PullSource
from service.records.patient import Patient
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.capabilities import CAPABILITIES, Capabilities, CapabilityCache, TypeSupport
from service.sync.client import Exchange, FhirClient, UnsafeUrl
from service.sync.patient_links import PATIENTS_KIND
from service.sync.tables import PullCursor, RemoteResource
from service.sync.taking import quarantine, release, source_system, system_context, take_in

__all__ = ["KindSummary", "PullError", "PullSummary", "pull", "source_system", "system_context"]

logger = logging.getLogger("tandem.sync.pull")
PAGE_SIZE = 100
MAX_PAGES = 10_000
STRICT = {"Prefer": "handling=strict"}
# The searches a pull runs (record⇄FHIR table), in order: patients before what refers to them.
SOURCES: dict[str, PullSource] = {source.name: source for source in PULL_SOURCES}
PULL_ORDER = tuple(SOURCES)
# R4's search parameter for each type's clinical date (the window where `_lastUpdated` is not offered).
DATE_PARAMS = {
    "Observation": "date",
    "Encounter": "date",
    "Appointment": "date",
    "MedicationAdministration": "effective-time",
    "QuestionnaireResponse": "authored",
    "ServiceRequest": "authored",
}
PATIENT_PARAMS = ("patient", "subject")
# A window reaches this far before the last pull: an entry made today may be dated days before (a score entered
# after the visit), and the source identifiers make the overlap harmless.
LOOKBACK = timedelta(days=30)
THROTTLE_STATUSES = (429, 503)
MAX_THROTTLE_RETRIES = 5
MAX_RETRY_AFTER_SECONDS = 120.0
DEFAULT_RETRY_AFTER_SECONDS = 5.0


class PullError(Exception):
    pass


@dataclass
class KindSummary:
    fetched: int = 0
    created: int = 0
    updated: int = 0  # a record Tandem held, changed to what the EHR holds now (a linked patient's phone)
    already_present: int = 0
    skipped: int = 0
    refused: int = 0  # quarantined
    pages: int = 0
    errors: list[str] = field(default_factory=list)  # searches that failed (nothing was taken from them)
    refusals: list[str] = field(default_factory=list)  # "<Type>/<id>: <element>: <why>"
    notes: list[str] = field(default_factory=list)  # what the target does not offer, so was not asked


@dataclass
class PullSummary:
    target_id: str
    kinds: dict[str, KindSummary] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0
    patients: int = 0

    @property
    def failed(self) -> bool:
        """Anything refused or any search failed: the pull command exits non-zero."""
        return bool(self.errors) or any(k.errors or k.refused for k in self.kinds.values())


Progress = Callable[[str, KindSummary], None]


@dataclass
class _Run:
    engine: Engine
    settings: Settings
    target: SyncTarget
    client: FhirClient
    capabilities: Capabilities
    summary: PullSummary
    sleep: Callable[[float], None]
    progress: Progress | None
    started: datetime = field(default_factory=now_utc)
    seen: set[str] = field(default_factory=set)


def pull(
    engine: Engine,
    settings: Settings,
    target_id: str,
    kinds: list[str] | None = None,
    *,
    tenant_id: str | None = None,
    client: FhirClient | None = None,
    progress: Progress | None = None,
    capability_cache: CapabilityCache = CAPABILITIES,
    sleep: Callable[[float], None] = time.sleep,
) -> PullSummary:
    target = target_of(engine, target_id, tenant_id)
    wanted = [k for k in PULL_ORDER if k in (kinds or target.pull)]
    with counting_client(target, settings, client, PullSummary(target_id)) as (ehr, summary):
        try:
            _pull(engine, settings, target, ehr, wanted, capability_cache, sleep, progress, summary)
        except (httpx.HTTPError, PullError, UnsafeUrl) as error:
            summary.errors.append(f"CapabilityStatement: {type(error).__name__}: {error}")
    return summary


def target_of(engine: Engine, target_id: str, tenant_id: str | None) -> SyncTarget:
    """The target a pull or an export reads from; one of another tenant reads as missing."""
    with unit_of_work(engine) as session:
        target = session.get(SyncTarget, target_id)
    if target is None or (tenant_id is not None and target.tenant_id != tenant_id):
        raise RecordNotFound("EHR sync target", target_id)
    return target


@contextmanager
def counting_client(
    target: SyncTarget, settings: Settings, client: FhirClient | None, summary: PullSummary
) -> Iterator[tuple[FhirClient, PullSummary]]:
    """The client to the target (the caller's, or one opened and closed here) counting its requests into the
    summary, and giving back the caller's own request hook afterwards."""
    ehr = client or FhirClient(target, settings)
    previous = ehr.on_request

    def counted(log: Any) -> None:
        summary.requests += 1
        if previous is not None:
            previous(log)

    ehr.on_request = counted
    try:
        yield ehr, summary
    finally:
        ehr.on_request = previous
        if client is None:
            ehr.close()


def _pull(
    engine: Engine,
    settings: Settings,
    target: SyncTarget,
    client: FhirClient,
    wanted: list[str],
    capability_cache: CapabilityCache,
    sleep: Callable[[float], None],
    progress: Progress | None,
    summary: PullSummary,
) -> None:
    if not target.mrn_system:
        summary.errors.append("the pull asks for patients by MRN: set the target's mrn_system")
        return
    capabilities = read_capabilities(client, capability_cache, sleep)
    run = _Run(engine, settings, target, client, capabilities, summary, sleep, progress)
    sources = [SOURCES[k] for k in wanted]
    for source in sources:
        summary.kinds[source.name] = KindSummary()
    for source in [s for s in sources if s.by_mrn]:
        _pull_patients(run, source)
    patients = _linked_patients(run)
    summary.patients = len(patients)
    for source in [s for s in sources if not s.by_mrn]:
        _pull_source(run, source, patients)


def read_capabilities(
    client: FhirClient, cache: CapabilityCache = CAPABILITIES, sleep: Callable[[float], None] = time.sleep
) -> Capabilities:
    """The target's CapabilityStatement, from the cache the push fills (fetched once per TTL)."""

    def fetch() -> dict[str, Any]:
        exchange = get(client, "metadata", None, sleep)
        if not exchange.ok or not isinstance(exchange.body, dict):
            raise PullError(f"GET metadata: HTTP {exchange.status_code} {_diagnostics(exchange.body)}")
        return exchange.body

    return cache.get(client.target.id, client.target.base_url, fetch)


def get(
    client: FhirClient,
    url: str,
    params: dict[str, str] | None,
    sleep: Callable[[float], None],
    headers: dict[str, str] | None = None,
    on_throttle: Callable[[], None] | None = None,
) -> Exchange:
    """A GET, waiting out 429/503 as the EHR says (Retry-After seconds or date, capped) and asking again."""
    for _ in range(MAX_THROTTLE_RETRIES):
        exchange = client.request("GET", url, params=params, headers=headers)
        if exchange.status_code not in THROTTLE_STATUSES:
            return exchange
        if on_throttle is not None:
            on_throttle()
        sleep(retry_after(exchange.headers.get("Retry-After")))
    return client.request("GET", url, params=params, headers=headers)


def retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP-date), capped."""
    if not value:
        return DEFAULT_RETRY_AFTER_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now_utc()).total_seconds()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER_SECONDS
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


# ---- patients ----------------------------------------------------------------------------------------------------


def _pull_patients(run: _Run, source: PullSource) -> None:
    """The target's patients under its MRN system (new or changed since the last pull where `_lastUpdated` is
    offered), then each patient Tandem follows there that is still not linked, looked up by its MRN."""
    result = run.summary.kinds[source.name]
    support = run.capabilities.support("Patient")
    if not support.searchable or "identifier" not in support.search_params:
        result.notes.append("the target does not search Patient by identifier: patients linked earlier only")
        return
    mrn_system = str(run.target.mrn_system)
    cursor = _cursor(run, source.name)
    params = {
        "identifier": f"{mrn_system}|",
        **({"_count": str(PAGE_SIZE)} if "_count" in support.search_params else {}),
    }
    if cursor and "_lastUpdated" in support.search_params:
        params["_lastUpdated"] = f"gt{cursor}"
    newest = ""
    try:
        for page in _pages(run, "Patient", params, result):
            newest = max(newest, _take_page(run, "Patient", page, result, about=None))
            if run.progress is not None:
                run.progress(source.name, result)
    except (httpx.HTTPError, PullError, UnsafeUrl) as error:
        result.errors.append(f"Patient?identifier={mrn_system}|: {type(error).__name__}: {error}")
    if newest and newest != cursor:
        _move_cursor(run, source.name, newest)
    linked = {patient_id for patient_id, _ in _linked_patients(run)}
    with unit_of_work(run.engine) as session:
        unlinked = [
            (p, mrn) for p, mrn in patients_with_mrn(session, run.target.tenant_id, mrn_system) if p not in linked
        ]
    for _patient_id, mrn in unlinked:
        try:
            for page in _pages(run, "Patient", {"identifier": f"{mrn_system}|{mrn}"}, result):
                _take_page(run, "Patient", page, result, about=None)
        except (httpx.HTTPError, PullError, UnsafeUrl) as error:
            result.errors.append(f"Patient?identifier=<MRN>: {type(error).__name__}: {error}")


def _linked_patients(run: _Run) -> list[tuple[str, str]]:
    """(our patient id, the EHR's Patient id) for each patient with an MRN at the target whose EHR id we know."""
    target = run.target
    with unit_of_work(run.engine) as session:
        followed = [p for p, _ in patients_with_mrn(session, target.tenant_id, str(target.mrn_system))]
        linked = dict(
            session.exec(
                select(RemoteResource.record_id, RemoteResource.remote_id).where(
                    col(RemoteResource.target_id) == target.id,
                    col(RemoteResource.record_kind) == PATIENTS_KIND,
                    col(RemoteResource.role) == "main",
                    col(RemoteResource.record_id).in_(followed),
                )
            ).all()
        )
        for patient in _patients(session, target.tenant_id, followed):
            if patient.id not in linked and patient.source_system == target.base_url:
                linked[patient.id] = patient.source_id.removeprefix("Patient/")
    return [(p, linked[p]) for p in followed if p in linked]


def _patients(session: Session, tenant_id: str, ids: list[str]) -> list[Patient]:
    if not ids:
        return []
    return list(session.exec(select(Patient).where(col(Patient.tenant_id) == tenant_id, col(Patient.id).in_(ids))))


# ---- patient-scoped searches -------------------------------------------------------------------------------------


def _pull_source(run: _Run, source: PullSource, patients: list[tuple[str, str]]) -> None:
    result = run.summary.kinds[source.name]
    resource_type = source.fhir_type
    support = run.capabilities.support(resource_type)
    if not support.searchable:
        result.notes.append(f"the target does not search {resource_type}")
        return
    candidates = (source.patient_param, *PATIENT_PARAMS) if source.patient_param else PATIENT_PARAMS
    patient_param = next((p for p in candidates if p in support.search_params), None)
    if patient_param is None:
        # Searchable, but not by patient (a server that declares no parameters for the type): one search of the
        # type, and only what is about a followed patient is taken.
        result.notes.append(f"the target does not search {resource_type} by patient: one search of the type")
        _pull_unscoped(run, source, support, {ehr for _, ehr in patients})
        return
    for name, _ in source.search:
        if name not in support.search_params:
            result.notes.append(f"{resource_type} `{name}` not offered: the patient's {resource_type}s are all asked")
    for patient_id, ehr_id in patients:
        key = f"{source.name}:{patient_id}"
        cursor = _cursor(run, key)
        params = _query(support, source, patient_param, ehr_id, cursor)
        newest: str | None = None
        try:
            for page in _pages(run, resource_type, params, result):
                newest = max(newest or "", _take_page(run, resource_type, page, result, about={ehr_id})) or None
        except (httpx.HTTPError, PullError, UnsafeUrl) as error:
            result.errors.append(f"{resource_type}?{patient_param}=…: {type(error).__name__}: {error}")
            continue
        # The EHR's clock where it says when it changed things; ours (the run's start) for a date window.
        moved = (newest or cursor) if "_lastUpdated" in support.search_params else run.started.isoformat()
        if moved and moved != cursor:
            _move_cursor(run, key, moved)
        if run.progress is not None:
            run.progress(source.name, result)


def _pull_unscoped(run: _Run, source: PullSource, support: TypeSupport, ehr_patients: set[str]) -> None:
    result = run.summary.kinds[source.name]
    declared = support.search_params
    params = {name: value for name, value in source.search if name in declared}
    if "_count" in declared:
        params["_count"] = str(PAGE_SIZE)
    try:
        for page in _pages(run, source.fhir_type, params, result):
            _take_page(run, source.fhir_type, page, result, about=ehr_patients)
    except (httpx.HTTPError, PullError, UnsafeUrl) as error:
        result.errors.append(f"{source.fhir_type}: {type(error).__name__}: {error}")


def _query(
    support: TypeSupport, source: PullSource, patient_param: str, ehr_id: str, cursor: str | None
) -> dict[str, str]:
    declared = support.search_params
    params = {patient_param: ehr_id}
    params.update({name: value for name, value in source.search if name in declared})
    if "_count" in declared:
        params["_count"] = str(PAGE_SIZE)
    if cursor is None:
        return params
    date_param = DATE_PARAMS.get(source.fhir_type)
    if "_lastUpdated" in declared:
        params["_lastUpdated"] = f"gt{cursor}"
    elif date_param is not None and date_param in declared:
        since = datetime.fromisoformat(cursor) - LOOKBACK
        params[date_param] = f"ge{since.date().isoformat()}"
    return params


def _cursor(run: _Run, key: str) -> str | None:
    with unit_of_work(run.engine) as session:
        row = session.get(PullCursor, (run.target.id, key[:64]))
        return row.last_updated if row else None


def _move_cursor(run: _Run, key: str, value: str) -> None:
    with unit_of_work(run.engine) as session:
        row = session.get(PullCursor, (run.target.id, key[:64]))
        if row is None:
            row = PullCursor(target_id=run.target.id, resource_type=key[:64], last_updated=value, updated_at=now_utc())
        row.last_updated, row.updated_at = value, now_utc()
        session.add(row)


# ---- pages and resources -----------------------------------------------------------------------------------------


def _pages(run: _Run, resource_type: str, params: dict[str, str], result: KindSummary) -> Iterator[dict[str, Any]]:
    url: str | None = resource_type
    query: dict[str, str] | None = params

    def throttled() -> None:
        run.summary.throttled += 1

    for _ in range(MAX_PAGES):
        if url is None:
            return
        exchange = get(run.client, url, query, run.sleep, STRICT, throttled)
        if not exchange.ok or not isinstance(exchange.body, dict) or exchange.body.get("resourceType") != "Bundle":
            raise PullError(f"search {resource_type}: HTTP {exchange.status_code} {_diagnostics(exchange.body)}")
        result.pages += 1
        yield exchange.body
        query = None
        url = next(
            (str(link["url"]) for link in exchange.body.get("link") or [] if link.get("relation") == "next"), None
        )
    raise PullError(f"search {resource_type}: more than {MAX_PAGES} pages")


def _take_page(
    run: _Run, resource_type: str, page: dict[str, Any], result: KindSummary, *, about: set[str] | None
) -> str:
    """Take in the page's matches; returns the newest meta.lastUpdated among them ("" when none says)."""
    newest = ""
    for entry in page.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if (entry.get("search") or {}).get("mode", "match") != "match" or not isinstance(resource, dict):
            continue
        if resource.get("resourceType") != resource_type or not resource.get("id"):
            continue
        if about is not None and not _is_about(resource, about):
            continue  # the EHR ignored the patient parameter: another patient's resource is not asked for here
        key = f"{resource_type}/{resource['id']}"
        if key in run.seen:
            continue
        run.seen.add(key)
        result.fetched += 1
        newest = max(newest, str((resource.get("meta") or {}).get("lastUpdated") or ""))
        take_one(run.engine, run.settings, run.target, resource, result)
    return newest


def take_one(
    engine: Engine, settings: Settings, target: SyncTarget, resource: dict[str, Any], result: KindSummary
) -> None:
    """One resource in its own unit of work; a refusal is undone and quarantined instead."""
    with unit_of_work(engine) as session:
        outcome = take_in(session, settings, target, resource)
        if outcome.taken == "refused":
            session.rollback()
            quarantine(session, target, resource, outcome.reason or "refused")
        elif outcome.taken != "skipped":
            release(session, target, resource, outcome.record_id)
    if outcome.taken == "created":
        result.created += 1
    elif outcome.taken == "updated":
        result.updated += 1
    elif outcome.taken == "already_present":
        result.already_present += 1
    elif outcome.taken == "skipped":
        result.skipped += 1
    else:
        result.refused += 1
        result.refusals.append(f"{resource['resourceType']}/{resource['id']}: {str(outcome.reason)[:300]}")


def _is_about(resource: dict[str, Any], ehr_patient_ids: set[str]) -> bool:
    """Whether the resource names the patient (subject, patient, or an Appointment participant); a resource naming
    no patient at all is left to its intake."""
    references: list[str] = []
    for name in ("subject", "patient"):
        value = resource.get(name)
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            references.append(value["reference"])
    for participant in resource.get("participant") or []:
        actor = participant.get("actor") if isinstance(participant, dict) else None
        if isinstance(actor, dict) and "Patient/" in str(actor.get("reference", "")):
            references.append(str(actor["reference"]))
    patients = [r for r in references if "Patient/" in r]
    return not patients or any(r.rsplit("/", 1)[-1] in ehr_patient_ids for r in patients)


def _diagnostics(body: Any) -> str:
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in body.get("issue") or [])[:300]
    return ""
