"""Administrators manage EHR targets; URLs are checked, secrets are never returned, others cannot see them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import API

PUBLIC_BASE = "https://93.184.216.34/api/FHIR/R4"


def target(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Epic test",
        "base_url": PUBLIC_BASE,
        "auth": {"kind": "bearer"},
        "push": ["ketamine-administrations", "questionnaire-responses"],
        "pull": ["patients"],
        "code_map": {"http://loinc.org|8480-6": [{"system": "urn:oid:1.2.840.114350", "code": "5"}]},
        **overrides,
    }


@pytest.fixture
def admin(tenant: str, auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth(tenant, "admin")


def test_an_admin_registers_a_target(client: TestClient, admin: dict[str, str]) -> None:
    created = client.post(f"{API}/sync/targets", json=target(), headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["auth"] == {"kind": "bearer"}
    assert body["token_written_for"] is None  # no token yet: its requests carry none
    assert body["code_map"]["http://loinc.org|8480-6"][0]["code"] == "5"
    assert client.get(f"{API}/sync/targets/{body['id']}", headers=admin).json()["base_url"] == PUBLIC_BASE


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("https://127.0.0.1/fhir", "base_url"),
        ("https://169.254.169.254/latest", "base_url"),
        ("http://93.184.216.34/fhir", "base_url"),
        ("https://2130706433/fhir", "base_url"),
    ],
)
def test_unsafe_urls_are_refused(client: TestClient, admin: dict[str, str], url: str, field: str) -> None:
    response = client.post(f"{API}/sync/targets", json=target(base_url=url), headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_an_unsafe_token_url_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    smart = {"kind": "smart-backend", "client_id": "c1", "token_url": "https://10.0.0.8/token", "key_id": "k1"}
    response = client.post(f"{API}/sync/targets", json=target(auth=smart), headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "auth.token_url"


def test_a_change_to_an_unsafe_url_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    created = client.post(f"{API}/sync/targets", json=target(name="Oracle"), headers=admin).json()
    response = client.patch(
        f"{API}/sync/targets/{created['id']}",
        json={"base_url": "https://192.168.0.4/fhir"},
        headers={**admin, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 422


@pytest.mark.parametrize("inline", [{"token": "eyJhbGciOi..."}, {"token_env": "TANDEM_EPIC_TOKEN"}])
def test_secrets_are_not_part_of_a_targets_settings(
    client: TestClient, admin: dict[str, str], inline: dict[str, str]
) -> None:
    response = client.post(f"{API}/sync/targets", json=target(auth={"kind": "bearer", **inline}), headers=admin)
    assert response.status_code == 422
    assert "PUT /api/v1/sync/targets/{id}/credential" in response.json()["errors"][0]["message"]


def test_names_are_unique_per_tenant(client: TestClient, admin: dict[str, str]) -> None:
    assert client.post(f"{API}/sync/targets", json=target(name="Cerner"), headers=admin).status_code == 201
    again = client.post(f"{API}/sync/targets", json=target(name="Cerner"), headers=admin)
    assert again.status_code == 409


@pytest.mark.parametrize("role", ["clinician", "coordinator", "ehr-system"])
def test_only_admins_see_targets(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]], role: str
) -> None:
    assert client.get(f"{API}/sync/targets", headers=auth(tenant, role)).status_code == 403
    assert client.post(f"{API}/sync/targets", json=target(), headers=auth(tenant, role)).status_code == 403
