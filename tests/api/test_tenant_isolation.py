"""A record of another tenant is indistinguishable from a missing one, on every route."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from service.records.kinds import RECORD_KINDS
from tests.builders import API, PATIENT_RECORD_BODIES, ApiDriver, patient_body

PATHS = [kind.path for kind in RECORD_KINDS]
MISSING_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def two_tenants(
    client: TestClient, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> tuple[ApiDriver, ApiDriver, dict[str, str]]:
    """Tenant A's driver, tenant B's driver, and B's records (path -> id)."""
    a = ApiDriver(client, auth(new_tenant(), "ehr-system"))
    b = ApiDriver(client, auth(new_tenant(), "ehr-system"))
    return a, b, b.one_of_each()


@pytest.mark.parametrize("path", PATHS)
def test_read_of_another_tenants_record_is_404_like_a_missing_one(
    two_tenants: tuple[ApiDriver, ApiDriver, dict[str, str]], path: str
) -> None:
    a, _, b_records = two_tenants
    foreign = a.client.get(f"{API}/{path}/{b_records[path]}", headers=a.headers)
    missing = a.client.get(f"{API}/{path}/{MISSING_ID}", headers=a.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"].replace(b_records[path], "<id>") == missing.json()["detail"].replace(
        MISSING_ID, "<id>"
    )


@pytest.mark.parametrize("path", PATHS)
def test_update_of_another_tenants_record_is_404(
    two_tenants: tuple[ApiDriver, ApiDriver, dict[str, str]], path: str
) -> None:
    a, b, b_records = two_tenants
    response = a.client.patch(f"{API}/{path}/{b_records[path]}", json={}, headers={**a.headers, "If-Match": 'W/"1"'})
    assert response.status_code == 404
    unchanged = b.client.get(f"{API}/{path}/{b_records[path]}", headers=b.headers).json()
    assert unchanged["version"] == 1


@pytest.mark.parametrize("path", [p for p in PATHS if p != "practitioners"])
def test_list_never_shows_another_tenants_records(
    two_tenants: tuple[ApiDriver, ApiDriver, dict[str, str]], path: str
) -> None:
    a, _, b_records = two_tenants
    by_patient = a.client.get(f"{API}/{path}", params={"patient_id": b_records["patients"]}, headers=a.headers)
    everything = a.client.get(f"{API}/{path}", params={"limit": 200}, headers=a.headers)
    assert by_patient.status_code == everything.status_code == 200
    assert by_patient.json()["items"] == []
    assert b_records[path] not in {item["id"] for item in everything.json()["items"]}


@pytest.mark.parametrize("path", sorted(PATIENT_RECORD_BODIES))
def test_create_for_another_tenants_patient_reads_like_an_unknown_patient(
    two_tenants: tuple[ApiDriver, ApiDriver, dict[str, str]], path: str
) -> None:
    a, _, b_records = two_tenants
    foreign = a.client.post(f"{API}/{path}", json=PATIENT_RECORD_BODIES[path](b_records["patients"]), headers=a.headers)
    missing = a.client.post(f"{API}/{path}", json=PATIENT_RECORD_BODIES[path](MISSING_ID), headers=a.headers)
    assert foreign.status_code == missing.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "patient_id"
    assert foreign.json()["detail"].replace(b_records["patients"], "<id>") == missing.json()["detail"].replace(
        MISSING_ID, "<id>"
    )


def test_another_tenants_enrollment_cannot_be_linked(
    two_tenants: tuple[ApiDriver, ApiDriver, dict[str, str]],
) -> None:
    a, _, b_records = two_tenants
    patient_id = a.patient()
    body = PATIENT_RECORD_BODIES["cbt-sessions"](patient_id, enrollment_id=b_records["enrollments"])
    response = a.client.post(f"{API}/cbt-sessions", json=body, headers=a.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "enrollment_id"


def test_a_source_identifier_is_per_tenant(two_tenants: tuple[ApiDriver, ApiDriver, dict[str, str]]) -> None:
    """The same EHR id in two tenants gives two records: a resend is recognised within a tenant only."""
    a, b, _ = two_tenants
    shared = patient_body()
    first = a.client.post(f"{API}/patients", json=shared, headers=a.headers)
    second = b.client.post(f"{API}/patients", json=shared, headers=b.headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
