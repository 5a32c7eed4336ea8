"""Reading a target's answers (service/sync/outcomes.py): the one Bundle entry status parser, the one exception
classifier, and a record's batch create read through them (the HTTP faked with httpx.MockTransport; the real
sekmet-fhir peer answers in test_sync_push_pull.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from service.records.sync_target import SyncTarget
from service.sync.auth import AuthError
from service.sync.capabilities import Capabilities, KindDecision, TypeSupport
from service.sync.client import Exchange, FhirClient, UnsafeUrl
from service.sync.delivery import deliver_plan
from service.sync.outcomes import (
    INTERNAL_ERROR,
    TARGET_FAILURES,
    DeliveryFailure,
    entry_exchange,
    entry_status,
    failure_from,
    failure_of,
)
from service.sync.planning import RecordPlan
from service.sync.records import PlannedResource
from tests.conftest import make_settings

BASE = "https://ehr.example.org/fhir"
SYSTEM = "urn:uuid:5a1b7c1e-0000-4000-8000-outcomes0001"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("200", 200),
        ("200 OK", 200),
        ("201 Created", 201),
        ("201 created", 201),
        (" 201 Created ", 201),
        ("404 Not Found", 404),
        ("412 Precondition Failed", 412),
        ("503", 503),
        ("200OK", 200),
        (201, 201),
    ],
)
def test_entry_status_reads_the_three_digit_code_r4_puts_first(status: object, code: int) -> None:
    assert entry_status(status) == code


@pytest.mark.parametrize("status", ["OK", "Created", "", "2000", "20", "HTTP 200", "600 Odd", None, True, 42, {}])
def test_entry_status_is_none_for_what_is_not_an_http_status(status: object) -> None:
    assert entry_status(status) is None


def test_an_entry_reads_as_the_exchange_its_request_would_have_had() -> None:
    created = entry_exchange(
        {
            "resource": {"resourceType": "Procedure", "id": "p1"},
            "response": {"status": "201 Created", "location": "Procedure/p1/_history/2", "etag": 'W/"2"'},
        }
    )
    assert created is not None and created.ok and created.status_code == 201
    assert (created.headers["Location"], created.headers["ETag"]) == ("Procedure/p1/_history/2", 'W/"2"')
    assert created.body == {"resourceType": "Procedure", "id": "p1"}
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "conflict"}]}
    refused = entry_exchange({"response": {"status": "409 Conflict", "outcome": outcome}})
    assert refused is not None and (refused.status_code, refused.body) == (409, outcome)
    for unreadable in ({"response": {"status": "Created"}}, {"response": "201"}, {}, "201 Created", None):
        assert entry_exchange(unreadable) is None


def test_failure_from_retries_what_may_pass_later_and_never_a_policy_refusal() -> None:
    def failure(status: int, body: Any = None, headers: dict[str, str] | None = None) -> DeliveryFailure:
        return failure_from(Exchange(status, httpx.Headers(headers or {}), body), "create Procedure")

    assert [failure(s).retryable for s in (400, 404, 408, 409, 412, 422, 429, 500, 503)] == [
        False,
        False,
        True,
        True,
        False,
        False,
        True,
        True,
        True,
    ]
    throttled = failure(429, headers={"Retry-After": "7"})
    assert (str(throttled), throttled.status_code, throttled.retry_after) == ("create Procedure: HTTP 429", 429, "7")
    consent = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "security"}]}
    refused = failure(403, consent)
    assert (refused.policy, refused.retryable, refused.outcome) == (True, False, consent)
    assert "policy refusal" in str(refused)


def test_one_classifier_for_every_exception_raised_while_talking_to_a_target() -> None:
    given = DeliveryFailure("search Procedure by identifier: HTTP 503", retryable=True, status_code=503)
    assert failure_of(given) is given
    timeout = failure_of(httpx.ReadTimeout("timed out"))
    assert (str(timeout), timeout.retryable, timeout.unknown) == ("ReadTimeout", True, False)
    refused = failure_of(AuthError("the token endpoint refused us", status_code=401, body={"error": "invalid_client"}))
    assert (refused.retryable, refused.status_code, refused.outcome) == (False, 401, {"error": "invalid_client"})
    assert str(refused) == "authentication: the token endpoint refused us"
    unsafe = failure_of(UnsafeUrl("http://10.0.0.1 is not the target's origin"))
    assert (str(unsafe), unsafe.retryable) == (
        "refused to contact the target: http://10.0.0.1 is not the target's origin",
        False,
    )
    bug = KeyError("resourceType")
    assert not isinstance(bug, TARGET_FAILURES)
    internal = failure_of(bug)
    assert (str(internal), internal.retryable) == (INTERNAL_ERROR, True)  # no detail of our bug in the row


# ---- a record's creates in one batch Bundle, answered through httpx.MockTransport --------------------------------


def _resource(role: str, local_id: str) -> PlannedResource:
    return PlannedResource(
        role=role,
        resource_type="Procedure",
        local_id=local_id,
        identifier_system=SYSTEM,
        identifier_value=local_id,
        strategy="search-create",
        body={"resourceType": "Procedure", "id": local_id, "status": "completed"},
    )


def _deliver(entries: list[dict[str, Any]]) -> tuple[list[httpx.Request], Any]:
    """Deliver a record of two Procedures to a target that finds neither and answers the batch create with
    `entries`: the requests made, and the result (or the failure)."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})
        assert json.loads(request.content)["type"] == "batch"
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": entries})

    settings = make_settings("sqlite://", sync_allowed_hosts=["ehr.example.org"])
    target = SyncTarget(
        id="target-1", tenant_id="tenant-1", source_system="urn:test", source_id="target-1", name="ehr", base_url=BASE
    )
    http = httpx.Client(transport=httpx.MockTransport(answer))
    client = FhirClient(target, settings, http=http, rate_limit=False)
    plan = RecordPlan(
        "cbt-sessions", "r1", 1, KindDecision("cbt-sessions", "natural"), [_resource("a", "a1"), _resource("b", "b1")]
    )
    support = TypeSupport(frozenset({"create", "update"}), True, False)
    capabilities = Capabilities(types={"Procedure": support}, batch=True, transaction=False)
    try:
        return sent, deliver_plan(client, plan, capabilities, tenant_id="tenant-1", known={}, delivered={})
    except DeliveryFailure as failure:
        return sent, failure


def test_a_batch_create_reads_statuses_with_their_reason_phrase() -> None:
    sent, result = _deliver(
        [
            {"response": {"status": "201 Created", "location": f"{BASE}/Procedure/ehr-a/_history/1", "etag": 'W/"1"'}},
            {"response": {"status": "201", "location": "Procedure/ehr-b/_history/3", "etag": 'W/"3"'}},
        ]
    )
    assert [request.method for request in sent] == ["GET", "GET", "POST"]  # two searches, one Bundle
    assert result.status == "sent"
    assert [(r.role, r.remote_id, r.remote_version) for r in result.remote] == [
        ("a", "ehr-a", "1"),
        ("b", "ehr-b", "3"),
    ]


def test_a_batch_create_entry_without_an_http_status_is_a_retryable_unknown_failure() -> None:
    # Before: int("Created") raised a ValueError out of the delivery (an "internal error" on the row, a traceback).
    _, failure = _deliver(
        [
            {"response": {"status": "201 Created", "location": "Procedure/ehr-a/_history/1"}},
            {"response": {"status": "Created", "location": "Procedure/ehr-b/_history/1"}},
        ]
    )
    assert isinstance(failure, DeliveryFailure)
    assert (failure.retryable, failure.unknown) == (True, True)  # the retry finds it by its identifier
    assert str(failure) == "batch entry Procedure: the answer's status ('Created') is not an HTTP status"
    assert [r.remote_id for r in failure.remote] == ["ehr-a"]  # what the Bundle confirmed is kept


def test_a_batch_create_entry_that_names_no_id_is_retried_not_a_dead_letter() -> None:
    # Before: a 201 entry without a Location became "HTTP 201", not retryable: a dead letter for a created resource.
    _, failure = _deliver(
        [
            {"response": {"status": "201 Created", "location": "Procedure/ehr-a/_history/1"}},
            {"response": {"status": "201"}},
        ]
    )
    assert isinstance(failure, DeliveryFailure)
    assert (failure.retryable, failure.unknown, failure.status_code) == (True, True, None)
    assert "did not say which id" in str(failure)
