"""Delivering one record: its resources written to the target with an idempotent effect, request by request.

Per resource, by the strategy its type allows (see capabilities.py):
- search-create: GET Type?identifier=<ours> with `Prefer: handling=strict` (an unsupported search fails loudly
  instead of matching everything). Found: update it under its EHR version with If-Match (skipped when we already
  delivered this record version to that id). Not found: create. A create that got no answer is *unknown*: the
  attempt fails and the next one resolves it by the same search; nothing is ever re-POSTed blindly.
- put-client-id: PUT Type/<our deterministic id> (update-as-create), with If-Match once we know its version.
References to our other resources are rewritten to the EHR's ids. Creates of a record's dependent resources go
in one batch Bundle when the target accepts batches.

The plan comes from planning.py, answers are read by outcomes.py; many records in shared Bundles is batching.py,
which settles what a Bundle cannot through the one-resource operations here (find_and_update, create, update,
put_client_id, remember).
"""

from __future__ import annotations

from typing import Any

import httpx

from service.clock import now_utc
from service.sync.capabilities import Capabilities
from service.sync.client import Exchange, FhirClient
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
from service.sync.planning import RecordPlan, outgoing_body
from service.sync.records import PlannedResource, references_in
from service.sync.tables import RemoteResource

STRICT = {"Prefer": "handling=strict"}


class Delivery:
    """Delivers one RecordPlan through one client; collects the remote rows to store (`remote`) and the notes
    for the outbox row (`notes`). `known` grows with the target's ids of the resources it writes."""

    def __init__(
        self,
        client: FhirClient,
        plan: RecordPlan,
        capabilities: Capabilities,
        *,
        tenant_id: str,
        known: dict[str, str],
        delivered: dict[str, RemoteResource],
        use_batch: bool,
    ) -> None:
        self.client = client
        self.plan = plan
        self.capabilities = capabilities
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
                            self.put_client_id(resource)
                        elif not self.find_and_update(resource):
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
                            self.create(resource)
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
        return self.result()

    def result(self) -> DeliveryResult:
        """The record sent: its remote rows, and the notes (with a fallback's reason first)."""
        notes = "; ".join(self.notes) or None
        if self.plan.decision.mapping == "fallback":
            notes = "; ".join(filter(None, [self.plan.decision.reason, notes]))
        return DeliveryResult("sent", notes, self.remote)

    # -- one resource

    def writes(self, resource_type: str) -> frozenset[str]:
        return self.capabilities.support(resource_type).writes

    def find_and_update(self, resource: PlannedResource) -> bool:
        """True when the target already holds the resource (updated now if this record version is newer).

        A resource an earlier attempt confirmed (we hold its EHR id) needs no search: it is skipped when it has
        this record version already, else updated directly under its known version (a 412/404 falls back to the
        search)."""
        done = self.delivered.get(resource.role)
        if done is not None and done.resource_type == resource.resource_type:
            if done.record_version >= self.plan.record_version:
                self.remember(resource, done.remote_id, done.remote_version)
                return True
            if "update" in self.writes(resource.resource_type) and self.update(
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
                self.remember(resource, remote_id, remote_version)
                return True
            if "update" not in self.writes(resource.resource_type):
                self.keep_their_copy(resource, remote_id, remote_version)
                return True
            if self.update(resource, remote_id, remote_version, tolerate=(412,) if tries == 0 else ()):
                return True
            # someone changed it since our search: search again and apply on the new version
        return True

    def keep_their_copy(self, resource: PlannedResource, remote_id: str, remote_version: str | None) -> None:
        """The target holds the resource and takes no updates of its type: its copy stands, and the row says so."""
        self.notes.append(f"the target accepts no {resource.resource_type} updates; its copy was kept")
        self.remember(resource, remote_id, remote_version)

    def update(
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
        self.remember(resource, remote_id, version_of(exchange))
        return True

    def create(self, resource: PlannedResource) -> None:
        what = f"create {resource.resource_type}"
        try:
            exchange = self.client.request(
                "POST", resource.resource_type, json_body=outgoing_body(resource, self.known, None)
            )
        except httpx.HTTPError as error:
            raise transport_failure(error, what, unknown=True) from error
        if not exchange.ok:
            raise failure_from(exchange, what)
        self.remember_created(resource, exchange, what)

    def put_client_id(self, resource: PlannedResource) -> None:
        """Update-as-create under our own id; a stale If-Match (412) reads the current version and tries once more."""
        done = self.delivered.get(resource.role)
        if done is not None and done.record_version >= self.plan.record_version:
            self.remember(resource, done.remote_id, done.remote_version)
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
            self.remember(resource, resource.local_id, version_of(exchange))
            return

    def remember_created(self, resource: PlannedResource, exchange: Exchange, what: str) -> None:
        """A successful write's answer: the id and version it names, or a retryable failure when it names no id
        (the write happened, so the retry finds it by the identifier search)."""
        remote_id = created_id(exchange, resource.resource_type)
        if remote_id is None:
            raise DeliveryFailure(f"{what}: the target did not say which id it gave", retryable=True, unknown=True)
        self.remember(resource, remote_id, version_of(exchange))

    def remember(self, resource: PlannedResource, remote_id: str, remote_version: str | None) -> None:
        """The target holds `resource` as `remote_id`: later references name it, and its remote row is stored."""
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

    def _batch_create(self, resources: list[PlannedResource]) -> None:
        """This record's creates of one wave in one batch Bundle; each entry settles its resource."""
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
                self.remember_created(resource, answer, entry_what)
            except DeliveryFailure as failure:
                failed = failed or failure
        if failed is not None:
            raise failed


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
    """Deliver one record; raises the DeliveryFailure of an attempt that did not finish (with its remote rows)."""
    delivery = Delivery(
        client,
        plan,
        capabilities,
        tenant_id=tenant_id,
        known=known,
        delivered=delivered,
        use_batch=capabilities.batch if use_batch is None else use_batch,
    )
    return delivery.run()
