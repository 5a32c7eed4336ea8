"""Fuzzing findings 6 and 7 (docs/reliability.md), fixed: request bodies take dates and times as ISO 8601 text only
and booleans as true/false only (no Unix timestamps, no 0/1), and a 405 names every method of the path in Allow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.builders import API, ApiDriver, administration_body, enrollment_body, patient_body, practitioner_body
from tests.fhir.support import FHIR_JSON
from tests.reliability.pg_faults import checksum

Auth = Callable[..., dict[str, str]]
DATE = "expected a date as YYYY-MM-DD"
TIME = "expected a date and time as ISO 8601"
BOOL = "expected true or false"


def _refused(response: Any, field: str, message: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert message in next(e["message"] for e in problem["errors"] if e["field"] == field)


@pytest.mark.parametrize("value", [0, "0", 1700000000, "1700000000", 0.5, "1980-05-17T00:00:00+00:00"])
def test_a_birth_date_must_be_an_iso_date(
    client: TestClient, engine: Engine, tenant: str, auth: Auth, value: object
) -> None:
    before = checksum(engine)
    response = client.post(f"{API}/patients", json=patient_body(birth_date=value), headers=auth(tenant))
    _refused(response, "birth_date", DATE)
    assert checksum(engine) == before


@pytest.mark.parametrize(
    ("path", "field", "value", "message"),
    [
        ("ketamine-administrations", "started_at", 0, TIME),
        ("ketamine-administrations", "started_at", "1791363600", TIME),
        ("ketamine-administrations", "ended_at", 1791366000.0, TIME),
        ("ketamine-administrations", "vital_signs.0.taken_at", 0, TIME),
        ("enrollments", "start_date", 20261005, DATE),
        ("enrollments", "treatment_resistant", 1, BOOL),
        ("enrollments", "treatment_resistant", "yes", BOOL),
        ("practitioners", "active", 0, BOOL),
        ("practitioners", "active", "false", BOOL),
    ],
)
def test_times_and_booleans_are_not_coerced(
    client: TestClient, engine: Engine, tenant: str, auth: Auth, path: str, field: str, value: object, message: str
) -> None:
    patient = ApiDriver(client, auth(tenant)).patient()
    body = {
        "ketamine-administrations": administration_body(patient),
        "enrollments": enrollment_body(patient),
        "practitioners": practitioner_body(),
    }[path]
    if field == "vital_signs.0.taken_at":
        body["vital_signs"][0]["taken_at"] = value
    else:
        body[field] = value
    before = checksum(engine)
    role = "admin" if path == "practitioners" else "clinician"
    _refused(client.post(f"{API}/{path}", json=body, headers=auth(tenant, role)), field, message)
    assert checksum(engine) == before


def test_updates_are_strict_too_and_iso_values_still_pass(
    client: TestClient, engine: Engine, tenant: str, auth: Auth
) -> None:
    created = ApiDriver(client, auth(tenant)).create("patients", patient_body())
    url, etag = f"{API}/patients/{created['id']}", f'W/"{created["version"]}"'
    before = checksum(engine)
    refused = client.patch(url, json={"birth_date": 0}, headers={**auth(tenant), "If-Match": etag})
    _refused(refused, "birth_date", DATE)
    assert checksum(engine) == before
    changed = client.patch(url, json={"birth_date": "1981-02-03"}, headers={**auth(tenant), "If-Match": etag})
    assert changed.status_code == 200, changed.text
    assert changed.json()["birth_date"] == "1981-02-03"
    enrolled = ApiDriver(client, auth(tenant)).create(
        "enrollments", enrollment_body(created["id"], treatment_resistant=True, start_date="2026-10-05")
    )
    assert enrolled["treatment_resistant"] is True


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", f"{API}/patients", "GET, POST"),
        ("PUT", f"{API}/patients/some-id", "GET, PATCH"),
        ("PATCH", "/fhir/Patient/some-id", "GET, PUT, DELETE"),
        ("DELETE", "/fhir/Patient", "GET, POST"),
        ("GET", f"{API}/sync/dead-letters/1/replay", "POST"),
    ],
)
def test_a_405_names_every_method_of_the_path(
    client: TestClient, tenant: str, auth: Auth, method: str, path: str, allowed: str
) -> None:
    headers = {**auth(tenant), "Accept": FHIR_JSON} if path.startswith("/fhir") else auth(tenant)
    response = client.request(method, path, headers=headers)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize(
    ("query", "field"),
    [("to=0.5", "query.to"), ("from=1700000000", "query.from"), ("from=0", "query.from"), ("to=yesterday", "query.to")],
)
def test_list_bounds_are_iso_dates_or_times(
    client: TestClient, tenant: str, auth: Auth, query: str, field: str
) -> None:
    response = client.get(f"{API}/cbt-sessions?{query}", headers=auth(tenant))
    _refused(response, field, "expected a date as YYYY-MM-DD or a date and time as ISO 8601")
    for accepted in ("from=2026-10-01", "to=2026-10-01T09:00:00%2B02:00"):
        assert client.get(f"{API}/cbt-sessions?{accepted}", headers=auth(tenant)).status_code == 200


def test_plan_status_as_of_is_not_a_unix_time(client: TestClient, tenant: str, auth: Auth) -> None:
    patient = ApiDriver(client, auth(tenant, "ehr-system")).patient()
    response = client.get(f"{API}/patients/{patient}/plan-status?as_of=0", headers=auth(tenant))
    _refused(response, "query.as_of", "expected a date as YYYY-MM-DD or a date and time as ISO 8601")
    as_of = "2026-10-01T00:00:00Z"
    assert client.get(f"{API}/patients/{patient}/plan-status?as_of={as_of}", headers=auth(tenant)).status_code == 200
