"""Many records per request: the claimed records delivered together in shared `batch` Bundles.

The worker's default where the target takes `batch` Bundles. Wave by wave (a resource goes once the resources of
its record it refers to are at the target), every ready resource of every record in one Bundle per wave (split at
`max_entries`). A create is a conditional create (`ifNoneExist: identifier=<ours>`, where the type declares
conditionalCreate) instead of a search then a create: the same guarantee as delivery.py's (a create whose answer
was lost is found, not repeated) in one request for many resources; updates carry If-Match. An entry the Bundle
cannot settle (a conditional create that found an existing copy, a 412) falls back to that record's one-by-one
path (Delivery's find_and_update / create / update / put_client_id), through the delivery's own client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from service.sync.client import Exchange, FhirClient
from service.sync.delivery import Delivery
from service.sync.outcomes import (
    DeliveryFailure,
    DeliveryResult,
    created_id,
    entry_exchange,
    failure_from,
    transport_failure,
    unreadable_entry,
    version_of,
)
from service.sync.planning import outgoing_body
from service.sync.records import PlannedResource, references_in

MAX_BUNDLE_ENTRIES = 100
# Called after each Bundle request with the positions (in `deliveries`) of the records it carried.
OnRequest = Callable[[list[int]], None]


@dataclass
class _Entry:
    """One resource of one record (`index` in the deliveries) in a shared batch Bundle."""

    index: int
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
    on_request: OnRequest | None = None,
    max_entries: int = MAX_BUNDLE_ENTRIES,
) -> list[DeliveryResult | DeliveryFailure]:
    """Deliver several records with shared batch Bundles sent through `client`; `on_request(positions)` is called
    after each Bundle request (to log it on the attempts of the records it carried). Each delivery's capabilities
    must allow batches; the result list is in the order of `deliveries`."""
    return _Batch(client, deliveries, on_request).run(max_entries)


class _Batch:
    """The state of one batched delivery, by position in `deliveries`."""

    def __init__(self, client: FhirClient, deliveries: list[Delivery], on_request: OnRequest | None) -> None:
        self.client = client
        self.deliveries = deliveries
        self.on_request = on_request
        self.failures: dict[int, DeliveryFailure] = {}
        self.remaining = [list(d.plan.resources) for d in deliveries]
        self.own = [{r.local_reference for r in d.plan.resources} for d in deliveries]

    def fail(self, index: int, failure: DeliveryFailure) -> None:
        """A record's failure; a final one (not retryable) wins over a retryable one."""
        current = self.failures.get(index)
        if current is None or (current.retryable and not failure.retryable):
            self.failures[index] = failure.copy()  # one per record: each gets its own remote rows

    def run(self, max_entries: int) -> list[DeliveryResult | DeliveryFailure]:
        while True:
            wave = self._wave()
            if not wave:
                if not any(left for i, left in enumerate(self.remaining) if i not in self.failures):
                    break
                continue
            for start in range(0, len(wave), max_entries):
                self._send(wave[start : start + max_entries])
        results: list[DeliveryResult | DeliveryFailure] = []
        for index, delivery in enumerate(self.deliveries):
            failed = self.failures.get(index)
            if failed is not None:
                failed.remote = delivery.remote
                results.append(failed)
            else:
                results.append(delivery.result())
        return results

    def _wave(self) -> list[_Entry]:
        """The next wave's Bundle entries: per record, the resources whose references to its own are settled."""
        wave: list[_Entry] = []
        for index, delivery in enumerate(self.deliveries):
            left = self.remaining[index]
            if index in self.failures or not left:
                continue
            own = self.own[index]
            ready = [
                r for r in left if (references_in(r.body) & own) - {r.local_reference} <= delivery.known.keys()
            ] or left[:1]
            self.remaining[index] = [r for r in left if r not in ready]
            for resource in ready:
                try:
                    entry = _entry_for(index, delivery, resource)
                except DeliveryFailure as failure:
                    self.fail(index, failure)
                    continue
                if entry is not None:
                    wave.append(entry)
        return wave

    def _send(self, entries: list[_Entry]) -> None:
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": [e.bundle_entry() for e in entries]}
        carried = sorted({e.index for e in entries})
        what = f"batch of {len(entries)} resources"
        try:
            try:
                exchange = self.client.request("POST", "", json_body=bundle)
            finally:
                if self.on_request is not None:
                    self.on_request(carried)
        except httpx.HTTPError as error:
            for entry in entries:
                self.fail(entry.index, transport_failure(error, what, unknown=entry.method == "POST"))
            return
        answered = (exchange.body or {}).get("entry") if isinstance(exchange.body, dict) else None
        if not exchange.ok or not isinstance(answered, list) or len(answered) != len(entries):
            failure = (
                failure_from(exchange, what)
                if not exchange.ok
                else DeliveryFailure(f"{what}: the answer does not settle each entry", retryable=True, unknown=True)
            )
            for index in carried:
                self.fail(index, failure)
            return
        for entry, response_entry in zip(entries, answered, strict=True):
            try:
                _settle(entry, response_entry)
            except DeliveryFailure as failure:
                self.fail(entry.index, failure)


def _entry_for(index: int, delivery: Delivery, resource: PlannedResource) -> _Entry | None:
    """The Bundle entry for a resource, or None when it needs no request in the Bundle (already delivered at this
    record version, or sent one by one because its type takes no conditional create)."""
    plan = delivery.plan
    done = delivery.delivered.get(resource.role)
    support = delivery.capabilities.support(resource.resource_type)
    if done is not None and done.resource_type == resource.resource_type and done.record_version >= plan.record_version:
        delivery.remember(resource, done.remote_id, done.remote_version)
        return None
    if resource.strategy == "put-client-id":
        return _put_entry(index, delivery, resource, resource.local_id, done.remote_version if done else None)
    if done is not None and done.resource_type == resource.resource_type and "update" in support.writes:
        return _put_entry(index, delivery, resource, done.remote_id, done.remote_version)
    if not support.conditional_create:
        if not delivery.find_and_update(resource):
            delivery.create(resource)
        return None
    return _Entry(
        index,
        delivery,
        resource,
        "POST",
        outgoing_body(resource, delivery.known, None),
        resource.resource_type,
        if_none_exist=urlencode({"identifier": resource.identifier_query}),
    )


def _put_entry(
    index: int, delivery: Delivery, resource: PlannedResource, remote_id: str, version: str | None
) -> _Entry:
    """An update (or update-as-create) of the target's resource `remote_id`, under its version when we know it."""
    return _Entry(
        index,
        delivery,
        resource,
        "PUT",
        outgoing_body(resource, delivery.known, remote_id),
        f"{resource.resource_type}/{remote_id}",
        if_match=f'W/"{version}"' if version else None,
    )


def _settle(entry: _Entry, answer: Any) -> None:
    """What one entry's answer settles for its resource; raises the record's failure."""
    delivery, resource = entry.delivery, entry.resource
    what = f"batch entry {entry.method} {resource.resource_type}"
    exchange = entry_exchange(answer)
    if exchange is None:
        raise unreadable_entry(answer, what, unknown=entry.method == "POST")
    if exchange.ok:
        _settle_success(entry, exchange, answer)
        return
    if exchange.status_code in (404, 410, 412):
        # A stale If-Match, a copy deleted at the target, or an ambiguous conditional create: the one-by-one path
        # (read or search, then apply) sorts it out for this resource.
        if resource.strategy == "put-client-id":
            delivery.put_client_id(resource)
        elif not delivery.find_and_update(resource):
            delivery.create(resource)
        return
    raise failure_from(exchange, what)


def _settle_success(entry: _Entry, exchange: Exchange, answer: dict[str, Any]) -> None:
    delivery, resource = entry.delivery, entry.resource
    remote_id = created_id(exchange, resource.resource_type)
    if remote_id is None:
        raise DeliveryFailure(
            f"{entry.method} {resource.resource_type} in a batch: the target did not say which id it has",
            retryable=True,
            unknown=entry.method == "POST",
        )
    version = version_of(exchange)
    if entry.method != "POST" or exchange.status_code == 201:
        delivery.remember(resource, remote_id, version)
        return
    # The conditional create found a copy (an earlier attempt's create whose answer was lost, or the EHR's own):
    # bring it up to this record version, as the search-first path does.
    found = answer.get("resource")
    if isinstance(found, dict) and {k: v for k, v in found.items() if k != "meta"} == {**entry.body, "id": remote_id}:
        delivery.remember(resource, remote_id, version)  # it is what we would write: nothing to update
    elif "update" not in delivery.writes(resource.resource_type):
        delivery.keep_their_copy(resource, remote_id, version)
    elif not delivery.update(resource, remote_id, version, tolerate=(412,)) and not delivery.find_and_update(resource):
        delivery.create(resource)
