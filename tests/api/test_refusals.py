"""Every way a request can be wrong gets a problem+json naming the field, and the database is unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.builders import (
    API,
    ApiDriver,
    administration_body,
    cbt_body,
    enrollment_body,
    patient_body,
    questionnaire_body,
)
from tests.db_snapshot import database_checksum

# (name, path, body builder given a real patient id, the field the error must name)
REFUSALS: list[tuple[str, str, Callable[[str], dict[str, Any]], str]] = [
    ("unknown field", "patients", lambda p: patient_body(favourite_colour="teal"), "favourite_colour"),
    ("wrong type", "patients", lambda p: patient_body(birth_date=19800517), "birth_date"),
    ("birth date in the future", "patients", lambda p: patient_body(birth_date="2999-01-01"), "birth_date"),
    ("unknown sex code", "patients", lambda p: patient_body(sex="f"), "sex"),
    (
        "missing name",
        "patients",
        lambda p: {k: v for k, v in patient_body().items() if k not in ("family_name", "given_name")},
        "name_text",
    ),
    (
        "dose zero",
        "ketamine-administrations",
        lambda p: administration_body(p, dose_mg=0, dose_mg_per_kg=None),
        "dose_mg",
    ),
    (
        "dose negative",
        "ketamine-administrations",
        lambda p: administration_body(p, dose_mg=-5, dose_mg_per_kg=None),
        "dose_mg",
    ),
    (
        "end before start",
        "ketamine-administrations",
        lambda p: administration_body(p, ended_at="2026-10-07T08:00:00+00:00"),
        "body",
    ),
    (
        "BP 400/20",
        "ketamine-administrations",
        lambda p: administration_body(
            p,
            vital_signs=[{"taken_at": "2026-10-07T09:00:00+00:00", "systolic_mmhg": 400, "diastolic_mmhg": 20}],
        ),
        "vital_signs.0.systolic_mmhg",
    ),
    (
        "naive time",
        "ketamine-administrations",
        lambda p: administration_body(p, started_at="2026-10-07T09:00:00"),
        "started_at",
    ),
    (
        "not-done without reason",
        "ketamine-administrations",
        lambda p: administration_body(p, status="not-done"),
        "body",
    ),
    (
        "esketamine given IV",
        "ketamine-administrations",
        lambda p: administration_body(p, drug="esketamine"),
        "body",
    ),
    (
        "sedation score out of range",
        "ketamine-administrations",
        lambda p: administration_body(p, sedation_score=9),
        "sedation_score",
    ),
    (
        "unknown patient",
        "ketamine-administrations",
        lambda p: administration_body("00000000-0000-0000-0000-000000000000"),
        "patient_id",
    ),
    (
        "enrollment ends before it starts",
        "enrollments",
        lambda p: enrollment_body(p, end_date="2026-01-01"),
        "body",
    ),
    (
        "discontinued without reason",
        "enrollments",
        lambda p: enrollment_body(p, status="discontinued"),
        "body",
    ),
    (
        "unknown coordinator",
        "enrollments",
        lambda p: enrollment_body(p, coordinator_id="nobody"),
        "coordinator_id",
    ),
    (
        "attended without a start",
        "cbt-sessions",
        lambda p: cbt_body(p, actual_start=None, actual_end=None),
        "body",
    ),
    ("session number zero", "cbt-sessions", lambda p: cbt_body(p, session_number=0), "session_number"),
    ("no-show with a start", "cbt-sessions", lambda p: cbt_body(p, status="no-show"), "body"),
    (
        "answer with two values",
        "questionnaire-responses",
        lambda p: questionnaire_body(p, answers=[{"link_id": "44250-9", "value_integer": 1, "value_string": "x"}]),
        "answers.0",
    ),
    (
        "item answered twice",
        "questionnaire-responses",
        lambda p: questionnaire_body(
            p,
            answers=[{"link_id": "44250-9", "value_integer": 1}, {"link_id": "44250-9", "value_integer": 2}],
        ),
        "body",
    ),
    ("server-owned field", "patients", lambda p: {**patient_body(), "version": 7}, "version"),
    ("server-owned id", "patients", lambda p: {**patient_body(), "id": "chosen-by-client"}, "id"),
]


@pytest.mark.parametrize(("name", "path", "build", "field"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_and_nothing_written(
    client: TestClient,
    engine: Engine,
    tenant: str,
    auth: Callable[..., dict[str, str]],
    name: str,
    path: str,
    build: Callable[[str], dict[str, Any]],
    field: str,
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patient_id = api.patient()
    records_before = database_checksum(engine, exclude={"audit_events"})
    response = client.post(f"{API}/{path}", json=build(patient_id), headers=api.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]], problem
    assert problem["detail"]
    # The attempt itself is audited as a failure; no record table changed.
    assert database_checksum(engine, exclude={"audit_events"}) == records_before


def test_broken_json_is_refused(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> None:
    response = client.post(
        f"{API}/patients",
        content=b'{"family_name": "x",',
        headers={**auth(tenant), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_broken_json_is_located_by_line_and_column(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    # Issue #24 part 6: the refusal named the character offset as a field ("field": "31").
    body = b'{\n  "family_name": "Nakamura",\n  "sex": \n}'
    headers = {**auth(tenant), "Content-Type": "application/json"}
    response = client.post(f"{API}/patients", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "body", "message": "not valid JSON at line 4, column 1: Expecting value"}
    ]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_sent_as_json_gets_415(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]], content_type: str | None
) -> None:
    # Issue #24 part 6: a JSON body labelled text/plain was a 422 "Input should be a valid dictionary".
    headers = auth(tenant, "ehr-system")
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = database_checksum(engine, exclude={"audit_events"})
    body = json.dumps(patient_body()).encode()
    response = client.post(f"{API}/patients", content=body, headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Unsupported media type"
    assert "Content-Type: application/json" in problem["detail"]
    assert (content_type or "without a Content-Type") in problem["detail"]
    assert database_checksum(engine, exclude={"audit_events"}) == before


def test_a_change_not_sent_as_json_gets_415(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patient_id = api.patient()
    response = client.patch(
        f"{API}/patients/{patient_id}",
        content=b'{"given_name": "Kim"}',
        headers={**api.headers, "Content-Type": "text/plain", "If-Match": 'W/"1"'},
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_oversized_body_gets_413(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> None:
    limit = client.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    body = b'{"family_name": "' + b"x" * (limit + 10) + b'"}'
    response = client.post(
        f"{API}/patients", content=body, headers={**auth(tenant), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["title"] == "Request Entity Too Large"
    assert str(limit) in response.json()["detail"]
