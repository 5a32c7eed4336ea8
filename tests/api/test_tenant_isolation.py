"""A record of another tenant is indistinguishable from a missing one, on every route."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from service.auth.principal import Role
from service.record_store.kinds import RECORD_KINDS
from service.sync.target_kind import SYNC_TARGETS
from tests.builders import API, PATIENT_RECORD_BODIES, ApiDriver, patient_body

# The clinical kinds and the sync targets (administration, served by the same generic routes).
STORED = (*RECORD_KINDS, SYNC_TARGETS)
PATHS = [kind.path for kind in STORED]
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def role_for(path: str) -> Role:
    """A role that may read and write this kind (the EHR interface where it may)."""
    kind = next(k for k in STORED if k.path == path)
    return "ehr-system" if "ehr-system" in kind.writers else "admin"


@pytest.fixture
def two_tenants(
    client: TestClient, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> tuple[Callable[[str], ApiDriver], Callable[[str], ApiDriver], dict[str, str]]:
    """Drivers for tenants A and B by path (with a role allowed there), and B's records (path -> id)."""
    tenant_a, tenant_b = new_tenant(), new_tenant()

    def a(path: str) -> ApiDriver:
        return ApiDriver(client, auth(tenant_a, role_for(path)))

    def b(path: str) -> ApiDriver:
        return ApiDriver(client, auth(tenant_b, role_for(path)))

    return a, b, b("patients").one_of_each(auth(tenant_b, "admin"))


TwoTenants = tuple[Callable[[str], ApiDriver], Callable[[str], ApiDriver], dict[str, str]]


@pytest.mark.parametrize("path", PATHS)
def test_read_of_another_tenants_record_is_404_like_a_missing_one(two_tenants: TwoTenants, path: str) -> None:
    drive_a, _, b_records = two_tenants
    a = drive_a(path)
    foreign = a.client.get(f"{API}/{path}/{b_records[path]}", headers=a.headers)
    missing = a.client.get(f"{API}/{path}/{MISSING_ID}", headers=a.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"].replace(b_records[path], "<id>") == missing.json()["detail"].replace(
        MISSING_ID, "<id>"
    )


@pytest.mark.parametrize("path", PATHS)
def test_update_of_another_tenants_record_is_404(two_tenants: TwoTenants, path: str) -> None:
    drive_a, drive_b, b_records = two_tenants
    a, b = drive_a(path), drive_b(path)
    response = a.client.patch(f"{API}/{path}/{b_records[path]}", json={}, headers={**a.headers, "If-Match": 'W/"1"'})
    assert response.status_code == 404
    unchanged = b.client.get(f"{API}/{path}/{b_records[path]}", headers=b.headers).json()
    assert unchanged["version"] == 1


@pytest.mark.parametrize("path", [p for p in PATHS if p != "practitioners"])
def test_list_never_shows_another_tenants_records(two_tenants: TwoTenants, path: str) -> None:
    drive_a, _, b_records = two_tenants
    a = drive_a(path)
    by_patient = a.client.get(f"{API}/{path}", params={"patient_id": b_records["patients"]}, headers=a.headers)
    everything = a.client.get(f"{API}/{path}", params={"limit": 200}, headers=a.headers)
    assert by_patient.status_code == everything.status_code == 200
    assert by_patient.json()["items"] == []
    assert b_records[path] not in {item["id"] for item in everything.json()["items"]}


@pytest.mark.parametrize("path", sorted(PATIENT_RECORD_BODIES))
def test_create_for_another_tenants_patient_reads_like_an_unknown_patient(two_tenants: TwoTenants, path: str) -> None:
    drive_a, _, b_records = two_tenants
    a = drive_a(path)
    foreign = a.client.post(f"{API}/{path}", json=PATIENT_RECORD_BODIES[path](b_records["patients"]), headers=a.headers)
    missing = a.client.post(f"{API}/{path}", json=PATIENT_RECORD_BODIES[path](MISSING_ID), headers=a.headers)
    assert foreign.status_code == missing.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "patient_id"
    assert foreign.json()["detail"].replace(b_records["patients"], "<id>") == missing.json()["detail"].replace(
        MISSING_ID, "<id>"
    )


def test_another_tenants_enrollment_cannot_be_linked(
    two_tenants: TwoTenants,
) -> None:
    drive_a, _, b_records = two_tenants
    a = drive_a("cbt-sessions")
    patient_id = a.patient()
    body = PATIENT_RECORD_BODIES["cbt-sessions"](patient_id, enrollment_id=b_records["enrollments"])
    response = a.client.post(f"{API}/cbt-sessions", json=body, headers=a.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "enrollment_id"


def test_a_source_identifier_is_per_tenant(two_tenants: TwoTenants) -> None:
    """The same EHR id in two tenants gives two records: a resend is recognised within a tenant only."""
    drive_a, drive_b, _ = two_tenants
    a, b = drive_a("patients"), drive_b("patients")
    shared = patient_body()
    first = a.client.post(f"{API}/patients", json=shared, headers=a.headers)
    second = b.client.post(f"{API}/patients", json=shared, headers=b.headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
