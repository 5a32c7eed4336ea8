"""Batch mode's per-entry bookkeeping (batching.deliver_plans_batched), against a scripted target (a real FhirClient
over httpx.MockTransport): each record is settled by its own entry of the shared Bundle; the end-to-end guarantees
run against sekmet-fhir in test_sync_push_pull.py and test_sync_faults.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from service.records.sync_target import SyncTarget
from service.sync.batching import deliver_plans_batched
from service.sync.capabilities import Capabilities, KindDecision, TypeSupport
from service.sync.client import Exchange, FhirClient
from service.sync.delivery import Delivery
from service.sync.outcomes import DeliveryFailure, DeliveryResult
from service.sync.planning import RecordPlan
from service.sync.records import PlannedResource
from tests.conftest import make_settings

BASE = "https://ehr.example.org/fhir"
SYSTEM = "urn:uuid:5a1b7c1e-0000-4000-8000-batchtest001"
CAPABILITIES = Capabilities(
    types={"Procedure": TypeSupport(frozenset({"create", "update"}), True, False, conditional_create=True)},
    batch=True,
    transaction=False,
)


class ScriptedTarget:
    """A real FhirClient whose HTTP is answered by `answer(method, path, body)` through httpx.MockTransport; `sent`
    holds what reached the wire."""

    def __init__(self, answer: Callable[[str, str, Any], Exchange]) -> None:
        self.sent: list[tuple[str, str, Any]] = []

        def handle(request: httpx.Request) -> httpx.Response:
            path = request.url.path.removeprefix(urlsplit(BASE).path).strip("/")
            body = json.loads(request.content) if request.content else None
            self.sent.append((request.method, path, body))
            exchange = answer(request.method, path, body)
            return httpx.Response(exchange.status_code, headers=exchange.headers, json=exchange.body)

        target = SyncTarget(
            id="target-1", tenant_id="t", source_system="urn:test", source_id="target-1", name="ehr", base_url=BASE
        )
        settings = make_settings("sqlite://", sync_allowed_hosts=["ehr.example.org"])
        self.client = FhirClient(
            target, settings, http=httpx.Client(transport=httpx.MockTransport(handle)), rate_limit=False
        )


def _delivery(client: ScriptedTarget, record_id: str) -> Delivery:
    resource = PlannedResource(
        role="main",
        resource_type="Procedure",
        local_id=record_id,
        identifier_system=SYSTEM,
        identifier_value=record_id,
        strategy="search-create",
        body={"resourceType": "Procedure", "id": record_id, "status": "completed"},
    )
    plan = RecordPlan("cbt-sessions", record_id, 1, KindDecision("cbt-sessions", "natural"), [resource])
    return Delivery(client.client, plan, CAPABILITIES, tenant_id="t", known={}, delivered={}, use_batch=True)


def _bundle_answer(*entries: dict[str, Any]) -> Exchange:
    return Exchange(200, httpx.Headers(), {"resourceType": "Bundle", "type": "batch-response", "entry": list(entries)})


def test_one_bundle_of_conditional_creates_settles_each_record_by_its_entry() -> None:
    refusal = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "restricted patient (break-the-glass)"}],
    }

    def answer(method: str, path: str, body: Any) -> Exchange:
        return _bundle_answer(
            {"response": {"status": "201 Created", "location": "Procedure/remote-a/_history/1", "etag": 'W/"1"'}},
            {"response": {"status": "403 Forbidden", "outcome": refusal}},
        )

    client = ScriptedTarget(answer)
    created, refused = deliver_plans_batched(client.client, [_delivery(client, "a"), _delivery(client, "b")])
    [(method, path, bundle)] = client.sent  # one request for both records, no searches
    assert (method, path, bundle["type"]) == ("POST", "", "batch")
    assert [e["request"] for e in bundle["entry"]] == [
        {"method": "POST", "url": "Procedure", "ifNoneExist": f"identifier={SYSTEM.replace(':', '%3A')}%7Ca"},
        {"method": "POST", "url": "Procedure", "ifNoneExist": f"identifier={SYSTEM.replace(':', '%3A')}%7Cb"},
    ]
    assert isinstance(created, DeliveryResult) and created.status == "sent"
    assert [(r.remote_id, r.remote_version) for r in created.remote] == [("remote-a", "1")]
    assert isinstance(refused, DeliveryFailure)
    assert (refused.policy, refused.retryable, refused.status_code) == (True, False, 403)  # a dead letter, not retried


def test_a_lost_bundle_leaves_every_record_in_it_unknown_and_retryable() -> None:
    def answer(method: str, path: str, body: Any) -> Exchange:
        raise httpx.ReadError("connection reset after the request was sent")

    client = ScriptedTarget(answer)
    outcomes = deliver_plans_batched(client.client, [_delivery(client, "a"), _delivery(client, "b")])
    assert all(isinstance(o, DeliveryFailure) and o.retryable and o.unknown for o in outcomes)


def test_a_copy_found_by_the_conditional_create_is_kept_when_identical_and_updated_otherwise() -> None:
    def answer(method: str, path: str, body: Any) -> Exchange:
        if method == "PUT":
            return Exchange(200, httpx.Headers({"ETag": 'W/"3"'}), {**body, "meta": {"versionId": "3"}})
        return _bundle_answer(
            {  # what an earlier attempt created (its answer was lost): identical, kept
                "response": {"status": "200 OK", "location": "Procedure/remote-a/_history/1", "etag": 'W/"1"'},
                "resource": {"resourceType": "Procedure", "id": "remote-a", "status": "completed", "meta": {}},
            },
            {  # an older copy: updated under its version
                "response": {"status": "200 OK", "location": "Procedure/remote-b/_history/2", "etag": 'W/"2"'},
                "resource": {"resourceType": "Procedure", "id": "remote-b", "status": "in-progress"},
            },
        )

    client = ScriptedTarget(answer)
    kept, updated = deliver_plans_batched(client.client, [_delivery(client, "a"), _delivery(client, "b")])
    assert isinstance(kept, DeliveryResult) and isinstance(updated, DeliveryResult)
    assert [(r.remote_id, r.remote_version) for r in kept.remote] == [("remote-a", "1")]
    assert [(r.remote_id, r.remote_version) for r in updated.remote] == [("remote-b", "3")]
    assert [(m, p) for m, p, _ in client.sent] == [("POST", ""), ("PUT", "Procedure/remote-b")]
