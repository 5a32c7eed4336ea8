"""Delivering one outbox row: the record's resources written to the target with an idempotent effect.

Per resource, by the strategy its type allows (see capabilities.py):
- search-create: GET Type?identifier=<ours> with `Prefer: handling=strict` (an unsupported search fails loudly
  instead of matching everything). Found: update it under its EHR version with If-Match (skipped when we already
  delivered this record version to that id). Not found: create. A create that got no answer is *unknown*: the
  attempt fails and the next one resolves it by the same search; nothing is ever re-POSTed blindly.
- put-client-id: PUT Type/<our deterministic id> (update-as-create), with If-Match once we know its version.
References to our other resources are rewritten to the EHR's ids. Creates of a record's dependent resources go
in one batch Bundle when the target accepts batches.

Batch mode (the worker's default where the target takes `batch` Bundles; deliver_plans_batched): the claimed
records go together, one Bundle per wave for all of them, and a create is a conditional create
(`ifNoneExist: identifier=<ours>`, where the type declares conditionalCreate) instead of a search then a create:
the same guarantee (a create whose answer was lost is found, not repeated) in one request for many resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.sync.capabilities import Capabilities, KindDecision, decide
from service.sync.client import FhirClient
from service.sync.outbox import OutboxMessage
from service.sync.outcomes import (
    DeliveryFailure,
    DeliveryResult,
    created_id,
    entry_exchange,
    failure_from,
    search_matches,
    transport_failure,
    unreadable_entry,
    version_of,
)
from service.sync.records import (
    PlannedResource,
    plan_resources,
    public_records,
    references_in,
    rewrite_references,
)
from service.sync.tables import RemoteResource

STRICT = {"Prefer": "handling=strict"}


@dataclass
class RecordPlan:
    kind: str
    record_id: str
    record_version: int
    decision: KindDecision
    resources: list[PlannedResource]

    @cached_property
    def references(self) -> set[str]:
        """Every reference in the record's resources (to its own resources and to other records')."""
        return set().union(*(references_in(r.body) for r in self.resources))


def plan_rows(
    session: Session,
    *,
    tenant_id: str,
    rows: list[tuple[str, str]],
    capabilities: Capabilities,
    canonical_base: str,
    code_map: dict[str, Any],
) -> list[RecordPlan | DeliveryResult]:
    """What each (kind, record id) becomes for this target, in order; the records of one kind read in one query
    (a claim's rows are planned together: per-row reads cost a round trip each on PostgreSQL)."""
    decisions = {kind: decide(kind, capabilities) for kind, _ in rows}
    wanted: dict[str, list[str]] = {}
    for kind, record_id in rows:
        if decisions[kind].mapping != "not_supported":
            wanted.setdefault(kind, []).append(record_id)
    records = {
        (kind, record_id): record
        for kind, ids in wanted.items()
        for record_id, record in public_records(session, tenant_id, kind, ids).items()
    }
    result: list[RecordPlan | DeliveryResult] = []
    for kind, record_id in rows:
        decision = decisions[kind]
        record = records.get((kind, record_id))
        if decision.mapping == "not_supported":
            result.append(DeliveryResult("not_supported", decision.reason))
        elif record is None:
            result.append(DeliveryResult("not_supported", f"the {kind} record {record_id} no longer exists"))
        elif resources := plan_resources(record, kind, decision, canonical_base=canonical_base, code_map=code_map):
            result.append(RecordPlan(kind, record_id, record.version, decision, resources))
        else:
            nothing = f"{decision.reason or kind}: nothing to send for this record"
            result.append(DeliveryResult("not_supported", nothing))
    return result


Known = tuple[dict[str, str], dict[str, RemoteResource]]
# What a row's record becomes for a target, the target's ids of our references, and our remote rows by role.
Planned = tuple[RecordPlan | DeliveryResult, dict[str, str], dict[str, RemoteResource]]


def plan_for_target(
    session: Session,
    *,
    tenant_id: str,
    target_id: str,
    rows: list[tuple[str, str]],
    capabilities: Capabilities,
    canonical_base: str,
    code_map: dict[str, Any],
) -> list[Planned | DeliveryFailure]:
    """Per (kind, record id), in order: its plan with the references the target holds and our remote rows, or
    the failure of a record held back by a dead letter (held_by_dead_letters). A few queries for all of them:
    the worker plans a claim's rows together, the dry run one record."""
    plans = plan_rows(
        session,
        tenant_id=tenant_id,
        rows=rows,
        capabilities=capabilities,
        canonical_base=canonical_base,
        code_map=code_map,
    )
    record_plans = [plan for plan in plans if isinstance(plan, RecordPlan)]
    known = known_references_many(session, target_id, record_plans)
    held = held_by_dead_letters(session, target_id, record_plans, [references for references, _ in known])
    settled = iter(zip(known, held, strict=True))
    result: list[Planned | DeliveryFailure] = []
    for plan in plans:
        if not isinstance(plan, RecordPlan):
            result.append((plan, {}, {}))
            continue
        (references, delivered), failure = next(settled)
        result.append(failure or (plan, references, delivered))
    return result


def known_references_many(session: Session, target_id: str, plans: list[RecordPlan]) -> list[Known]:
    """Per plan: our references -> the target's, for every resource of ours the target already holds; and the
    remote rows of this record by role. Two queries for all of them."""
    pairs_of: list[set[tuple[str, str]]] = []
    for plan in plans:
        wanted = plan.references | {r.local_reference for r in plan.resources}
        pairs_of.append({(kind, local) for kind, local in (ref.split("/", 1) for ref in wanted if ref.count("/") == 1)})
    local_ids = {local for pairs in pairs_of for _, local in pairs}
    held: dict[tuple[str, str], str] = {}
    if local_ids:
        rows = session.exec(
            select(RemoteResource).where(
                col(RemoteResource.target_id) == target_id, col(RemoteResource.local_id).in_(local_ids)
            )
        ).all()
        held = {(row.resource_type, row.local_id): row.remote_id for row in rows}
    own: dict[tuple[str, str], dict[str, RemoteResource]] = {}
    if plans:
        rows = session.exec(
            select(RemoteResource).where(
                col(RemoteResource.target_id) == target_id,
                col(RemoteResource.record_id).in_({plan.record_id for plan in plans}),
            )
        ).all()
        for row in rows:
            own.setdefault((row.record_kind, row.record_id), {})[row.role] = row
    return [
        (
            {f"{kind}/{local}": f"{kind}/{held[kind, local]}" for kind, local in pairs if (kind, local) in held},
            own.get((plan.kind, plan.record_id), {}),
        )
        for plan, pairs in zip(plans, pairs_of, strict=True)
    ]


def held_by_dead_letters(
    session: Session, target_id: str, plans: list[RecordPlan], known: list[dict[str, str]]
) -> list[DeliveryFailure | None]:
    """Per plan, the failure that keeps it from being sent, if any: it refers to another record of ours that the
    target does not hold and whose outbox row for this target is a dead letter. Sent now, the EHR would get a
    reference to nothing (our local id); per-patient order (claim) only holds a row behind *open* rows, so a dead
    letter must hold its dependants itself. Not retried: replaying the target's dead letters sends both, in order."""
    missing: list[set[str]] = []
    for plan, held in zip(plans, known, strict=True):
        own = {resource.local_reference for resource in plan.resources}
        references = plan.references - own - set(held)
        missing.append({ref.split("/", 1)[1] for ref in references if ref.count("/") == 1})
    wanted = set().union(*missing)
    dead: dict[str, tuple[int, str]] = {}
    if wanted:
        rows = session.exec(
            select(OutboxMessage.id, OutboxMessage.record_kind, OutboxMessage.record_id).where(
                col(OutboxMessage.target_id) == target_id,
                col(OutboxMessage.status) == "dead",
                col(OutboxMessage.record_id).in_(wanted),
            )
        ).all()
        dead = {record_id: (row_id, kind) for row_id, kind, record_id in rows if row_id is not None}
    failures: list[DeliveryFailure | None] = []
    for ids in missing:
        blocking = sorted(dead[record_id] + (record_id,) for record_id in ids if record_id in dead)
        if not blocking:
            failures.append(None)
            continue
        named = ", ".join(f"{kind} {record_id} (outbox row {row_id})" for row_id, kind, record_id in blocking)
        failures.append(
            DeliveryFailure(
                f"not sent: it refers to {named}, a dead letter the target does not hold; replay that first "
                "(replaying the target's dead letters sends both, in order)",
                retryable=False,
            )
        )
    return failures


def outgoing_body(resource: PlannedResource, known: dict[str, str], remote_id: str | None) -> dict[str, Any]:
    body = rewrite_references(resource.body, known)
    body.pop("meta", None)  # the EHR owns versionId/lastUpdated of its copy
    if remote_id is None:
        body.pop("id", None)
    else:
        body["id"] = remote_id
    return dict(body)


# ---- delivery ---------------------------------------------------------------------------------------------------


class Delivery:
    """Delivers one RecordPlan through one client; collects the remote rows to store."""

    def __init__(
        self,
        client: FhirClient,
        plan: RecordPlan,
        *,
        tenant_id: str,
        known: dict[str, str],
        delivered: dict[str, RemoteResource],
        use_batch: bool,
    ) -> None:
        self.client = client
        self.plan = plan
        self.tenant_id = tenant_id
        self.known = dict(known)
        self.delivered = delivered
        self.use_batch = use_batch
        self.remote: list[RemoteResource] = []
        self.notes: list[str] = []

    def run(self) -> DeliveryResult:
        """In waves: a resource goes once every resource of this record it refers to is at the target (so its
        references can name the EHR's ids); a wave's creates go in one batch Bundle where the target takes them."""
        own = {r.local_reference for r in self.plan.resources}
        remaining = list(self.plan.resources)
        try:
            while remaining:
                ready = [
                    r for r in remaining if (references_in(r.body) & own) - {r.local_reference} <= self.known.keys()
                ]
                ready = ready or remaining[:1]
                creates: list[PlannedResource] = []
                # A retryable failure of one resource does not stop the others of its wave: the attempt still
                # makes progress (what it confirmed is kept), then fails with the first failure.
                first: DeliveryFailure | None = None
                for resource in ready:
                    try:
                        if resource.strategy == "put-client-id":
                            self._put_client_id(resource)
                        elif not self._find_and_update(resource):
                            creates.append(resource)
                    except DeliveryFailure as failure:
                        if not failure.retryable:
                            raise
                        first = first or failure
                if self.use_batch and len(creates) > 1:
                    self._batch_create(creates)
                else:
                    for resource in creates:
                        try:
                            self._create(resource)
                        except DeliveryFailure as failure:
                            if not failure.retryable:
                                raise
                            first = first or failure
                if first is not None:
                    raise first
                remaining = [r for r in remaining if r not in ready]
        except DeliveryFailure as failure:
            failure.remote = self.remote
            raise
        return DeliveryResult("sent", "; ".join(self.notes) or None, self.remote)

    # -- one resource

    def _search(self, resource: PlannedResource) -> list[dict[str, Any]]:
        what = f"search {resource.resource_type} by identifier"
        try:
            exchange = self.client.request(
                "GET", resource.resource_type, params={"identifier": resource.identifier_query}, headers=STRICT
            )
        except httpx.HTTPError as error:
            raise transport_failure(error, what, unknown=False) from error
        if not exchange.ok:
            raise failure_from(exchange, what)
        return search_matches(exchange.body, resource.resource_type)

    def _find_and_update(self, resource: PlannedResource) -> bool:
        """True when the target already holds the resource (updated now if this record version is newer).

        A resource an earlier attempt confirmed (we hold its EHR id) needs no search: it is skipped when it has
        this record version already, else updated directly under its known version (a 412/404 falls back to the
        search)."""
        done = self.delivered.get(resource.role)
        if done is not None and done.resource_type == resource.resource_type:
            if done.record_version >= self.plan.record_version:
                self._remember(resource, done.remote_id, done.remote_version)
                return True
            if "update" in self.client_capabilities_writes(resource.resource_type) and self._update(
                resource, done.remote_id, done.remote_version, tolerate=(404, 410, 412)
            ):
                return True
        for tries in range(2):
            matches = self._search(resource)
            if not matches:
                return False
            if len(matches) > 1:
                self.notes.append(
                    f"{len(matches)} {resource.resource_type} at the target carry {resource.role}'s identifier"
                )
            existing = matches[0]
            remote_id = str(existing["id"])
            meta = existing.get("meta") or {}
            remote_version = str(meta.get("versionId")) if meta.get("versionId") else None
            done = self.delivered.get(resource.role)
            if done is not None and done.remote_id == remote_id and done.record_version >= self.plan.record_version:
                self._remember(resource, remote_id, remote_version)
                return True
            if "update" not in self.client_capabilities_writes(resource.resource_type):
                self.notes.append(f"the target accepts no {resource.resource_type} updates; its copy was kept")
                self._remember(resource, remote_id, remote_version)
                return True
            if self._update(resource, remote_id, remote_version, tolerate=(412,) if tries == 0 else ()):
                return True
            # someone changed it since our search: search again and apply on the new version
        return True

    def _update(
        self, resource: PlannedResource, remote_id: str, remote_version: str | None, *, tolerate: tuple[int, ...]
    ) -> bool:
        """PUT under If-Match; False when the answer is one of `tolerate` (the caller searches again)."""
        headers = {"If-Match": f'W/"{remote_version}"'} if remote_version else {}
        what = f"update {resource.resource_type}"
        try:
            exchange = self.client.request(
                "PUT",
                f"{resource.resource_type}/{remote_id}",
                json_body=outgoing_body(resource, self.known, remote_id),
                headers=headers,
            )
        except httpx.HTTPError as error:
            raise transport_failure(error, what, unknown=False) from error
        if exchange.status_code in tolerate:
            return False
        if not exchange.ok:
            raise failure_from(exchange, what)
        self._remember(resource, remote_id, version_of(exchange))
        return True

    def client_capabilities_writes(self, resource_type: str) -> frozenset[str]:
        return self.capabilities.support(resource_type).writes

    capabilities: Capabilities  # set by deliver_plan

    def _create(self, resource: PlannedResource) -> None:
        what = f"create {resource.resource_type}"
        try:
            exchange = self.client.request(
                "POST", resource.resource_type, json_body=outgoing_body(resource, self.known, None)
            )
        except httpx.HTTPError as error:
            raise transport_failure(error, what, unknown=True) from error
        if not exchange.ok:
            raise failure_from(exchange, what)
        remote_id = created_id(exchange, resource.resource_type)
        if remote_id is None:
            raise DeliveryFailure(f"{what}: the target did not say which id it gave", retryable=True, unknown=True)
        self._remember(resource, remote_id, version_of(exchange))

    def _put_client_id(self, resource: PlannedResource) -> None:
        done = self.delivered.get(resource.role)
        if done is not None and done.record_version >= self.plan.record_version:
            self._remember(resource, done.remote_id, done.remote_version)
            return
        path = f"{resource.resource_type}/{resource.local_id}"
        what = f"update-as-create {resource.resource_type}"
        version = done.remote_version if done is not None else None
        for tries in range(2):
            headers = {"If-Match": f'W/"{version}"'} if version else {}
            try:
                exchange = self.client.request(
                    "PUT", path, json_body=outgoing_body(resource, self.known, resource.local_id), headers=headers
                )
            except httpx.HTTPError as error:
                raise transport_failure(error, what, unknown=False) from error  # PUT is idempotent: just repeat
            if exchange.status_code == 412 and tries == 0:
                try:
                    current = self.client.request("GET", path)
                except httpx.HTTPError as error:
                    raise transport_failure(error, f"read {resource.resource_type}", unknown=False) from error
                version = version_of(current)
                continue
            if not exchange.ok:
                raise failure_from(exchange, what)
            self._remember(resource, resource.local_id, version_of(exchange))
            return

    def _batch_create(self, resources: list[PlannedResource]) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {
                    "resource": outgoing_body(r, self.known, None),
                    "request": {"method": "POST", "url": r.resource_type},
                }
                for r in resources
            ],
        }
        what = f"batch create of {len(resources)} resources"
        try:
            exchange = self.client.request("POST", "", json_body=bundle)
        except httpx.HTTPError as error:
            raise transport_failure(error, what, unknown=True) from error
        if not exchange.ok:
            raise failure_from(exchange, what)
        entries = (exchange.body or {}).get("entry") if isinstance(exchange.body, dict) else None
        if not isinstance(entries, list) or len(entries) != len(resources):
            answered = len(entries) if isinstance(entries, list) else 0
            raise DeliveryFailure(f"{what}: {answered} entries answered", retryable=True, unknown=True)
        failed: DeliveryFailure | None = None
        for resource, entry in zip(resources, entries, strict=True):
            entry_what = f"batch entry {resource.resource_type}"
            answer = entry_exchange(entry)
            try:
                if answer is None:
                    raise unreadable_entry(entry, entry_what, unknown=True)
                if not answer.ok:
                    raise failure_from(answer, entry_what)
                remote_id = created_id(answer, resource.resource_type)
                if remote_id is None:
                    raise DeliveryFailure(
                        f"{entry_what}: the target did not say which id it gave", retryable=True, unknown=True
                    )
                self._remember(resource, remote_id, version_of(answer))
            except DeliveryFailure as failure:
                failed = failed or failure
        if failed is not None:
            raise failed

    def _remember(self, resource: PlannedResource, remote_id: str, remote_version: str | None) -> None:
        self.known[resource.local_reference] = f"{resource.resource_type}/{remote_id}"
        self.remote.append(
            RemoteResource(
                tenant_id=self.tenant_id,
                target_id=self.client.target.id,
                record_kind=self.plan.kind,
                record_id=self.plan.record_id,
                role=resource.role,
                resource_type=resource.resource_type,
                local_id=resource.local_id,
                remote_id=remote_id,
                remote_version=remote_version,
                record_version=self.plan.record_version,
                updated_at=now_utc(),
            )
        )


def deliver_plan(
    client: FhirClient,
    plan: RecordPlan,
    capabilities: Capabilities,
    *,
    tenant_id: str,
    known: dict[str, str],
    delivered: dict[str, RemoteResource],
    use_batch: bool | None = None,
) -> DeliveryResult:
    delivery = Delivery(
        client,
        plan,
        tenant_id=tenant_id,
        known=known,
        delivered=delivered,
        use_batch=capabilities.batch if use_batch is None else use_batch,
    )
    delivery.capabilities = capabilities
    result = delivery.run()
    if plan.decision.mapping == "fallback":
        result.reason = "; ".join(filter(None, [plan.decision.reason, result.reason]))
    return result


def store_remote(session: Session, rows: list[RemoteResource]) -> None:
    """Upsert (target, record, role) -> remote id/version; part of the caller's transaction. One query for all."""
    if not rows:
        return
    found = session.exec(
        select(RemoteResource).where(
            col(RemoteResource.target_id).in_({row.target_id for row in rows}),
            col(RemoteResource.record_kind).in_({row.record_kind for row in rows}),
            col(RemoteResource.record_id).in_({row.record_id for row in rows}),
        )
    ).all()
    current = {(r.target_id, r.record_kind, r.record_id, r.role): r for r in found}
    for row in rows:
        key = (row.target_id, row.record_kind, row.record_id, row.role)
        existing = current.get(key)
        if existing is None:
            session.add(row)
            current[key] = row
        else:
            for name in ("resource_type", "local_id", "remote_id", "remote_version", "record_version", "updated_at"):
                setattr(existing, name, getattr(row, name))
            session.add(existing)


# ---- dry run ----------------------------------------------------------------------------------------------------


def dry_run_requests(
    plan: RecordPlan, known: dict[str, str], delivered: dict[str, RemoteResource], *, base_url: str, use_batch: bool
) -> list[dict[str, Any]]:
    """The requests delivering this record would make now (the search decides between the create and the update
    at run time: both are listed, the update with the EHR id we know, if any)."""
    known = dict(known)  # grows as the listed requests would create resources
    base = base_url.rstrip("/")
    requests: list[dict[str, Any]] = []
    for resource in plan.resources:
        done = delivered.get(resource.role)
        if resource.strategy == "put-client-id":
            headers = {"If-Match": f'W/"{done.remote_version}"'} if done and done.remote_version else {}
            requests.append(
                {
                    "method": "PUT",
                    "url": f"{base}/{resource.resource_type}/{resource.local_id}",
                    "headers": headers,
                    "body": outgoing_body(resource, known, resource.local_id),
                }
            )
        else:
            requests.append(
                {
                    "method": "GET",
                    "url": f"{base}/{resource.resource_type}?identifier={resource.identifier_query}",
                    "headers": dict(STRICT),
                    "when": "always: finds a copy made by an earlier attempt",
                }
            )
            if done is not None:
                requests.append(
                    {
                        "method": "PUT",
                        "url": f"{base}/{resource.resource_type}/{done.remote_id}",
                        "headers": {"If-Match": f'W/"{done.remote_version}"'} if done.remote_version else {},
                        "body": outgoing_body(resource, known, done.remote_id),
                        "when": "the search finds it and this record version was not delivered yet",
                    }
                )
            requests.append(
                {
                    "method": "POST",
                    "url": f"{base}/{resource.resource_type}",
                    "headers": {},
                    "body": outgoing_body(resource, known, None),
                    "when": "the search finds nothing"
                    + (
                        " (in batch mode: one batch Bundle entry with ifNoneExist instead of the search)"
                        if use_batch
                        else ""
                    ),
                }
            )
        known.setdefault(
            resource.local_reference, f"{resource.resource_type}/{done.remote_id if done else resource.local_id}"
        )
    return requests


# ---- many records per request -------------------------------------------------------------------------------------

MAX_BUNDLE_ENTRIES = 100


@dataclass
class _Entry:
    """One resource of one record in a shared batch Bundle."""

    delivery: Delivery
    resource: PlannedResource
    method: str  # POST (conditional create) | PUT (update, or update-as-create)
    body: dict[str, Any]
    url: str
    if_none_exist: str | None = None
    if_match: str | None = None

    def bundle_entry(self) -> dict[str, Any]:
        request: dict[str, Any] = {"method": self.method, "url": self.url}
        if self.if_none_exist:
            request["ifNoneExist"] = self.if_none_exist
        if self.if_match:
            request["ifMatch"] = self.if_match
        return {"resource": self.body, "request": request}


def deliver_plans_batched(
    client: FhirClient,
    deliveries: list[Delivery],
    *,
    on_request: Any = None,
    max_entries: int = MAX_BUNDLE_ENTRIES,
) -> list[DeliveryResult | DeliveryFailure]:
    """Deliver several records with shared `batch` Bundles: wave by wave (a resource goes once the resources of its
    record it refers to are at the target), every ready resource of every record in one Bundle per wave (split at
    `max_entries`). Creates are conditional (`ifNoneExist: identifier=<ours>`), so no search precedes them and a
    create whose answer was lost finds its copy on the retry; updates carry If-Match. An entry the Bundle cannot
    settle (a conditional create that found an existing copy, a 412) falls back to that record's one-by-one path,
    through the delivery's own client. `client` sends the Bundles; `on_request(deliveries)` is called after each
    Bundle request with the records it carried (to log it on their attempts).

    Each delivery's capabilities must allow batches; the result list is in the order of `deliveries`."""
    failures: dict[int, DeliveryFailure] = {}
    remaining = {id(d): list(d.plan.resources) for d in deliveries}
    own = {id(d): {r.local_reference for r in d.plan.resources} for d in deliveries}

    def fail(delivery: Delivery, failure: DeliveryFailure) -> None:
        if id(delivery) not in failures or (failures[id(delivery)].retryable and not failure.retryable):
            failures[id(delivery)] = failure.copy()  # one per record: each gets its own remote rows

    while True:
        wave: list[_Entry] = []
        for delivery in deliveries:
            if id(delivery) in failures or not remaining[id(delivery)]:
                continue
            left = remaining[id(delivery)]
            ready = [
                r
                for r in left
                if (references_in(r.body) & own[id(delivery)]) - {r.local_reference} <= delivery.known.keys()
            ] or left[:1]
            remaining[id(delivery)] = [r for r in left if r not in ready]
            for resource in ready:
                try:
                    entry = _batch_entry(delivery, resource)
                except DeliveryFailure as failure:
                    fail(delivery, failure)
                    continue
                if entry is not None:
                    wave.append(entry)
        if not wave:
            if not any(remaining[id(d)] for d in deliveries if id(d) not in failures):
                break
            continue
        for start in range(0, len(wave), max_entries):
            _send_batch(client, wave[start : start + max_entries], fail, on_request)
    results: list[DeliveryResult | DeliveryFailure] = []
    for delivery in deliveries:
        failed = failures.get(id(delivery))
        if failed is not None:
            failed.remote = delivery.remote
            results.append(failed)
            continue
        result = DeliveryResult("sent", "; ".join(delivery.notes) or None, delivery.remote)
        if delivery.plan.decision.mapping == "fallback":
            result.reason = "; ".join(filter(None, [delivery.plan.decision.reason, result.reason]))
        results.append(result)
    return results


def _batch_entry(delivery: Delivery, resource: PlannedResource) -> _Entry | None:
    """The Bundle entry for a resource, or None when it needs no request in the Bundle (already delivered at this
    record version, or sent one by one because its type takes no conditional create)."""
    plan = delivery.plan
    done = delivery.delivered.get(resource.role)
    support = delivery.capabilities.support(resource.resource_type)
    if done is not None and done.resource_type == resource.resource_type and done.record_version >= plan.record_version:
        delivery._remember(resource, done.remote_id, done.remote_version)
        return None
    if resource.strategy == "put-client-id":
        return _put_entry(delivery, resource, resource.local_id, done.remote_version if done is not None else None)
    if done is not None and done.resource_type == resource.resource_type and "update" in support.writes:
        return _put_entry(delivery, resource, done.remote_id, done.remote_version)
    if not support.conditional_create:
        if not delivery._find_and_update(resource):
            delivery._create(resource)
        return None
    return _Entry(
        delivery,
        resource,
        "POST",
        outgoing_body(resource, delivery.known, None),
        resource.resource_type,
        if_none_exist=urlencode({"identifier": resource.identifier_query}),
    )


def _put_entry(delivery: Delivery, resource: PlannedResource, remote_id: str, version: str | None) -> _Entry:
    """An update (or update-as-create) of the target's resource `remote_id`, under its version when we know it."""
    return _Entry(
        delivery,
        resource,
        "PUT",
        outgoing_body(resource, delivery.known, remote_id),
        f"{resource.resource_type}/{remote_id}",
        if_match=f'W/"{version}"' if version else None,
    )


def _send_batch(client: FhirClient, entries: list[_Entry], fail: Any, on_request: Any) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [e.bundle_entry() for e in entries]}
    carried = list({id(e.delivery): e.delivery for e in entries}.values())
    what = f"batch of {len(entries)} resources"
    try:
        try:
            exchange = client.request("POST", "", json_body=bundle)
        finally:
            if on_request is not None:
                on_request(carried)
    except httpx.HTTPError as error:
        for entry in entries:
            fail(entry.delivery, transport_failure(error, what, unknown=entry.method == "POST"))
        return
    answered = (exchange.body or {}).get("entry") if isinstance(exchange.body, dict) else None
    if not exchange.ok or not isinstance(answered, list) or len(answered) != len(entries):
        failure = (
            failure_from(exchange, what)
            if not exchange.ok
            else DeliveryFailure(f"{what}: the answer does not settle each entry", retryable=True, unknown=True)
        )
        for delivery in carried:
            fail(delivery, failure)
        return
    for entry, response_entry in zip(entries, answered, strict=True):
        try:
            _settle(entry, response_entry)
        except DeliveryFailure as failure:
            fail(entry.delivery, failure)


def _settle(entry: _Entry, answer: Any) -> None:
    delivery, resource = entry.delivery, entry.resource
    what = f"batch entry {entry.method} {resource.resource_type}"
    exchange = entry_exchange(answer)
    if exchange is None:
        raise unreadable_entry(answer, what, unknown=entry.method == "POST")
    status = exchange.status_code
    if exchange.ok:
        remote_id = created_id(exchange, resource.resource_type)
        if remote_id is None:
            raise DeliveryFailure(
                f"{entry.method} {resource.resource_type} in a batch: the target did not say which id it has",
                retryable=True,
                unknown=entry.method == "POST",
            )
        if entry.method == "POST" and status != 201:
            # The conditional create found a copy (an earlier attempt's create whose answer was lost, or the
            # EHR's own): bring it up to this record version, as the search-first path does.
            version = version_of(exchange)
            found = answer.get("resource")
            if isinstance(found, dict) and {k: v for k, v in found.items() if k != "meta"} == {
                **entry.body,
                "id": remote_id,
            }:
                delivery._remember(resource, remote_id, version)  # it is what we would write: nothing to update
                return
            if "update" not in delivery.capabilities.support(resource.resource_type).writes:
                delivery.notes.append(f"the target accepts no {resource.resource_type} updates; its copy was kept")
                delivery._remember(resource, remote_id, version)
            elif not delivery._update(resource, remote_id, version, tolerate=(412,)) and not (
                delivery._find_and_update(resource)
            ):
                delivery._create(resource)
            return
        delivery._remember(resource, remote_id, version_of(exchange))
        return
    if status in (404, 410, 412):
        # A stale If-Match, a copy deleted at the target, or an ambiguous conditional create: the one-by-one path
        # (read or search, then apply) sorts it out for this resource.
        if resource.strategy == "put-client-id":
            delivery._put_client_id(resource)
        elif not delivery._find_and_update(resource):
            delivery._create(resource)
        return
    raise failure_from(exchange, what)
