"""Subscriptions refused with an OperationOutcome naming the element, and nothing stored: an unknown topic, a
channel other than rest-hook, an ftp or loopback endpoint, a payload we do not send, a filter on another hospital's
patient; roles and tenants: only the EHR system subscribes, another hospital's subscription is not found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from service.subscriptions.tables import Subscription
from tests.builders import ApiDriver
from tests.subscriptions.conftest import Tandem
from tests.subscriptions.support import enrolled_patient, subscription

PUBLIC_ENDPOINT = "https://93.184.216.34/hooks/tandem"  # a public address literal: refused requests only
# Loopback, allowed by the module's settings, where nothing listens: a stored subscription never reaches the network.
CLOSED_PORT = "http://127.0.0.1:9/hooks/tandem"


def _issues(response: Any) -> list[dict[str, Any]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    issues: list[dict[str, Any]] = body["issue"]
    return issues


def _count(tandem: Tandem) -> int:
    with Session(tandem.engine) as session:
        return int(
            session.exec(
                select(func.count()).select_from(Subscription).where(col(Subscription.tenant_id) == tandem.tenant)
            ).one()
        )


def _refused(tandem: Tandem, body: dict[str, Any], where: str, words: str, client: TestClient | None = None) -> None:
    before = _count(tandem)
    response = (client or tandem.client).post("/fhir/Subscription", json=body, headers=tandem.headers)
    assert response.status_code in (400, 422), response.text
    issues = _issues(response)
    assert any(where in str(i.get("expression")) + str(i.get("diagnostics")) for i in issues), issues
    assert any(words in str(i.get("diagnostics")) for i in issues), issues
    assert _count(tandem) == before


def test_an_unknown_topic_is_refused(tandem: Tandem) -> None:
    body = subscription("https://tandem.example.org/fhir/SubscriptionTopic/encounter-complete", PUBLIC_ENDPOINT)
    _refused(tandem, body, "criteria", "unknown topic")


def test_a_channel_other_than_rest_hook_is_refused(tandem: Tandem) -> None:
    body = subscription("urgent-reason-raised", PUBLIC_ENDPOINT)
    body["channel"]["type"] = "websocket"
    _refused(tandem, body, "channel.type", "only rest-hook")


def test_an_ftp_endpoint_is_refused(tandem: Tandem) -> None:
    _refused(tandem, subscription("urgent-reason-raised", "ftp://93.184.216.34/hooks"), "channel.endpoint", "http(s)")


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("http://127.0.0.1:9/hooks", "https"),  # plain http, as in production settings
        ("https://127.0.0.1:9/hooks", "non-public"),  # loopback: not allowed unless the operator lists the host
        ("https://169.254.169.254/latest", "non-public"),  # cloud metadata
    ],
)
def test_an_unsafe_endpoint_is_refused_with_the_default_settings(
    tandem: Tandem, client: TestClient, auth: Callable[..., dict[str, str]], endpoint: str, words: str
) -> None:
    """The session's app has the production rules for endpoints (https, public hosts only)."""
    _refused(tandem, subscription("urgent-reason-raised", endpoint), "channel.endpoint", words, client=client)


def test_a_payload_we_do_not_send_is_refused(tandem: Tandem) -> None:
    body = subscription("urgent-reason-raised", PUBLIC_ENDPOINT, content="everything")
    _refused(tandem, body, "backport-payload-content", "empty, id-only, full-resource")
    xml = subscription("urgent-reason-raised", PUBLIC_ENDPOINT)
    xml["channel"]["payload"] = "application/fhir+xml"
    _refused(tandem, xml, "channel.payload", "application/fhir+json")


def test_a_bad_heartbeat_and_a_filter_we_cannot_apply_are_refused(tandem: Tandem) -> None:
    body = subscription("urgent-reason-raised", PUBLIC_ENDPOINT, heartbeat=0)
    _refused(tandem, body, "backport-heartbeat-period", "positive integer")
    by_code = subscription("urgent-reason-raised", PUBLIC_ENDPOINT)
    by_code["_criteria"] = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
                "valueString": "Flag?code=phq9_item9_positive",
            }
        ]
    }
    _refused(tandem, by_code, "backport-filter-criteria", "patient only")


def test_a_filter_on_another_hospitals_patient_is_refused(
    tandem: Tandem, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    theirs = enrolled_patient(ApiDriver(tandem.client, auth(new_tenant(), "ehr-system")))
    body = subscription("urgent-reason-raised", PUBLIC_ENDPOINT, patient_id=theirs)
    _refused(tandem, body, "backport-filter-criteria", "no such patient")


def test_another_hospitals_subscription_is_not_found(
    tandem: Tandem, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    created = tandem.client.post(
        "/fhir/Subscription", json=subscription("urgent-reason-raised", CLOSED_PORT), headers=tandem.headers
    )
    assert created.status_code == 201, created.text
    subscription_id = created.json()["id"]
    other = auth(new_tenant(), "ehr-system")
    for path in ("", "/$status", "/$events"):
        response = tandem.client.get(f"/fhir/Subscription/{subscription_id}{path}", headers=other)
        assert response.status_code == 404, response.text
        assert _issues(response)[0]["code"] == "not-found"
    assert tandem.client.delete(f"/fhir/Subscription/{subscription_id}", headers=other).status_code == 404
    listed = tandem.client.get("/fhir/Subscription", headers=other).json()
    assert listed["total"] == 0
    # still there, and still the owner's
    mine = tandem.client.get("/fhir/Subscription", headers=tandem.headers).json()
    assert subscription_id in [e["resource"]["id"] for e in mine["entry"]]
    deleted = tandem.client.delete(f"/fhir/Subscription/{subscription_id}", headers=tandem.headers)
    assert deleted.status_code == 200, deleted.text
    assert tandem.client.get(f"/fhir/Subscription/{subscription_id}", headers=tandem.headers).json()["status"] == "off"


@pytest.mark.parametrize("role", ["clinician", "coordinator", "admin"])
def test_only_the_ehr_system_subscribes(tandem: Tandem, auth: Callable[..., dict[str, str]], role: str) -> None:
    before = _count(tandem)
    response = tandem.client.post(
        "/fhir/Subscription",
        json=subscription("urgent-reason-raised", PUBLIC_ENDPOINT),
        headers=auth(tandem.tenant, role),
    )
    assert response.status_code == 403, response.text
    assert _count(tandem) == before


def test_the_topics_are_published(tandem: Tandem) -> None:
    statement = tandem.client.get("/fhir/metadata").json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    canonicals = [e["valueCanonical"] for e in entry["extension"]]
    assert canonicals == [
        "https://tandem.example.org/fhir/SubscriptionTopic/plan-status-changed",
        "https://tandem.example.org/fhir/SubscriptionTopic/urgent-reason-raised",
        "https://tandem.example.org/fhir/SubscriptionTopic/questionnaire-scored",
    ]
    topics = tandem.client.get("/fhir/Basic", params={"code": "SubscriptionTopic"}, headers=tandem.headers).json()
    urls = [
        next(e["valueUri"] for e in t["resource"]["extension"] if e["url"].endswith("SubscriptionTopic.url"))
        for t in topics["entry"]
    ]
    assert urls == canonicals
    one = tandem.client.get("/fhir/Basic/topic-urgent-reason-raised", headers=tandem.headers)
    assert one.status_code == 200 and one.json()["code"]["coding"][0]["code"] == "SubscriptionTopic"
    assert tandem.client.get("/fhir/Basic/topic-nothing", headers=tandem.headers).status_code == 404
