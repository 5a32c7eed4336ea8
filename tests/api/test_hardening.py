"""Rate limits, security headers, CORS closed by default, docs switchable off."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.builders import API


def test_a_client_over_its_rate_gets_429_with_retry_after(
    settings_factory: Callable[..., TestClient], tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    client = settings_factory(rate_limit_per_minute=5)
    headers = auth(tenant, "coordinator")
    statuses = [client.get(f"{API}/patients", headers=headers).status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 3
    limited = client.get(f"{API}/patients", headers=headers)
    assert limited.headers["retry-after"].isdigit()
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["x-request-id"]
    fhir = client.get("/fhir/Patient", headers=headers)
    assert fhir.status_code == 429
    assert fhir.json()["resourceType"] == "OperationOutcome"
    other = auth(tenant, "clinician", subject="someone-else")
    assert client.get(f"{API}/patients", headers=other).status_code == 200  # buckets are per client


def test_every_response_carries_the_hardening_headers(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    for response in (
        client.get(f"{API}/patients", headers=auth(tenant)),
        client.get(f"{API}/patients/missing", headers=auth(tenant)),
        client.get("/fhir/Patient", headers=auth(tenant, "ehr-system")),
        client.get("/healthz"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
    assert client.get("/fhir/metadata").headers["cache-control"].startswith("public")


def test_cors_is_closed_unless_configured(client: TestClient, settings_factory: Callable[..., TestClient]) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    assert "access-control-allow-origin" not in client.options(f"{API}/patients", headers=preflight).headers
    allowed = settings_factory(cors_allowed_origins=["https://portal.hospital.example"])
    answer = allowed.options(f"{API}/patients", headers={**preflight, "Origin": "https://portal.hospital.example"})
    assert answer.headers["access-control-allow-origin"] == "https://portal.hospital.example"


def test_docs_can_be_switched_off(settings_factory: Callable[..., TestClient]) -> None:
    closed = settings_factory(docs_enabled=False)
    assert closed.get("/docs").status_code == 404
    assert closed.get("/openapi.json").status_code == 404
