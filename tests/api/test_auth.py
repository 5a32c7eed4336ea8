"""Every route needs a valid token from a trusted issuer, for a registered tenant, with a role allowed there."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.builders import API, ApiDriver, patient_body
from tests.conftest import TEST_SECRET

# Public on purpose: probes, our public keys (EHRs fetch them to verify our SMART assertions), and the CDS Hooks
# discovery document (the services an EHR may call, no patient data; each call itself needs the EHR's JWT).
OPEN_PATHS = {"/healthz", "/readyz", "/.well-known/jwks.json", "/cds-services"}


def _token(settings: Settings, **claims: object) -> dict[str, str]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": settings.dev_issuer,
        "aud": settings.token_audience,
        "sub": "tester",
        "tenant": "whatever",
        "role": "clinician",
        "iat": now,
        "exp": now + 600,
    }
    base.update(claims)
    payload = {k: v for k, v in base.items() if v is not None}
    return {"Authorization": f"Bearer {jwt.encode(payload, TEST_SECRET, algorithm='HS256')}"}


def test_every_api_route_refuses_a_request_without_a_token(client: TestClient) -> None:
    # The OpenAPI document is the public list of routes, so a new route is covered without editing this test.
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    operations = [(method, path) for path, item in paths.items() if path not in OPEN_PATHS for method in item]
    assert len(operations) >= 24  # 6 record kinds x 4 operations
    for method, path in operations:
        url = path.replace("{record_id}", "some-id")
        response = client.request(method.upper(), url, json={})
        assert response.status_code == 401, (method, url, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("case", "claims", "expected_words"),
    [
        ("expired", {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ("wrong audience", {"aud": "someone-else"}, "audience"),
        ("wrong issuer", {"iss": "https://evil.example"}, "issuer"),
        ("no tenant", {"tenant": None}, "tenant"),
        ("unknown role", {"role": "superuser"}, "role"),
        ("no subject", {"sub": None}, "sub"),
    ],
)
def test_bad_tokens_get_401_with_a_reason(
    client: TestClient,
    settings: Settings,
    tenant: str,
    case: str,
    claims: dict[str, object],
    expected_words: str,
) -> None:
    headers = _token(settings, tenant=tenant, **claims) if "tenant" not in claims else _token(settings, **claims)
    response = client.get(f"{API}/patients", headers=headers)
    assert response.status_code == 401, case
    assert expected_words in response.json()["detail"], response.json()


def test_malformed_and_foreign_signed_tokens_get_401(client: TestClient, settings: Settings, tenant: str) -> None:
    assert client.get(f"{API}/patients", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    assert client.get(f"{API}/patients", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
    forged = jwt.encode(
        {
            "iss": settings.dev_issuer,
            "aud": settings.token_audience,
            "sub": "x",
            "tenant": tenant,
            "role": "admin",
            "exp": int(time.time()) + 60,
        },
        "a-different-secret-of-32-bytes-or-more!",
        algorithm="HS256",
    )
    response = client.get(f"{API}/patients", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    unsigned = jwt.encode(
        {
            "iss": settings.dev_issuer,
            "aud": settings.token_audience,
            "sub": "x",
            "tenant": tenant,
            "role": "admin",
            "exp": int(time.time()) + 60,
        },
        "",  # PyJWT reads "" as no key for alg none (its types do not admit None)
        algorithm="none",
    )
    assert client.get(f"{API}/patients", headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401


def test_a_token_for_an_unregistered_tenant_gets_403(client: TestClient, settings: Settings) -> None:
    response = client.get(f"{API}/patients", headers=_token(settings, tenant="no-such-hospital"))
    assert response.status_code == 403
    assert "not registered" in response.json()["detail"]


def test_roles_limit_what_can_be_written(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> None:
    patient_id = ApiDriver(client, auth(tenant, "ehr-system")).patient()
    coordinator = auth(tenant, "coordinator")
    assert client.get(f"{API}/patients/{patient_id}", headers=coordinator).status_code == 200
    assert client.post(f"{API}/patients", json=patient_body(), headers=coordinator).status_code == 403
    admin = auth(tenant, "admin")
    # Administrators manage the deployment, not patients: minimum necessary access.
    assert client.get(f"{API}/patients/{patient_id}", headers=admin).status_code == 403
