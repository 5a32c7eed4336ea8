"""Every read, list and write of patient data leaves an audit row, successful or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.records.audit import AuditEvent
from tests.builders import API, PATIENT_RECORD_BODIES, ApiDriver


def _audit(engine: Engine, request_id: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(col(AuditEvent.request_id) == request_id)))


def test_every_patient_data_route_writes_its_audit_row(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth(tenant, "ehr-system", subject="ehr-interface-7")
    api = ApiDriver(client, headers)
    patient_id = api.patient()
    paths = ["patients", *sorted(PATIENT_RECORD_BODIES)]
    for n, path in enumerate(paths):
        record_id = patient_id
        if path != "patients":
            request_id = f"create-{n}"
            response = client.post(
                f"{API}/{path}",
                json=PATIENT_RECORD_BODIES[path](patient_id),
                headers={**headers, "X-Request-ID": request_id},
            )
            assert response.status_code == 201
            assert response.headers["x-request-id"] == request_id
            record_id = response.json()["id"]
            _assert_one(engine, request_id, "create", path, record_id, patient_id, 201)
        _assert_ok(client, headers, "GET", f"{API}/{path}/{record_id}", f"read-{n}")
        _assert_one(engine, f"read-{n}", "read", path, record_id, patient_id, 200)
        _assert_ok(client, headers, "GET", f"{API}/{path}?patient_id={patient_id}", f"list-{n}")
        _assert_one(engine, f"list-{n}", "list", path, None, patient_id, 200)
        _assert_ok(client, {**headers, "If-Match": 'W/"1"'}, "PATCH", f"{API}/{path}/{record_id}", f"update-{n}")
        _assert_one(engine, f"update-{n}", "update", path, record_id, patient_id, 200)


def _assert_ok(client: TestClient, headers: dict[str, str], method: str, url: str, request_id: str) -> None:
    kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
    response = client.request(method, url, headers={**headers, "X-Request-ID": request_id}, **kwargs)
    assert response.status_code == 200, response.text


def _assert_one(
    engine: Engine,
    request_id: str,
    action: str,
    kind: str,
    record_id: str | None,
    patient_id: str,
    status: int,
) -> None:
    rows = _audit(engine, request_id)
    assert len(rows) == 1, (request_id, rows)
    row = rows[0]
    assert (row.action, row.record_kind, row.patient_id, row.status_code, row.outcome) == (
        action,
        kind,
        patient_id,
        status,
        "success",
    )
    assert row.actor == "ehr-interface-7"
    assert row.actor_role == "ehr-system"
    if record_id is not None:
        assert row.record_id == record_id


def test_failed_attempts_are_audited_too(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patient_id = api.patient()
    client.get(f"{API}/patients/missing-id", headers={**api.headers, "X-Request-ID": "fail-404"})
    [not_found] = _audit(engine, "fail-404")
    assert (not_found.outcome, not_found.status_code, not_found.record_id) == ("failure", 404, "missing-id")

    client.post(f"{API}/patients", json={}, headers={**auth(tenant, "coordinator"), "X-Request-ID": "fail-403"})
    [forbidden] = _audit(engine, "fail-403")
    assert (forbidden.outcome, forbidden.status_code, forbidden.action) == ("failure", 403, "create")

    client.patch(
        f"{API}/patients/{patient_id}",
        json={"given_name": "X"},
        headers={**api.headers, "If-Match": 'W/"9"', "X-Request-ID": "fail-412"},
    )
    [stale] = _audit(engine, "fail-412")
    assert (stale.outcome, stale.status_code, stale.patient_id) == ("failure", 412, patient_id)

    client.post(
        f"{API}/cbt-sessions",
        json={"patient_id": patient_id},
        headers={**api.headers, "X-Request-ID": "fail-422"},
    )
    [invalid] = _audit(engine, "fail-422")
    assert (invalid.outcome, invalid.status_code) == ("failure", 422)


def test_a_list_audits_each_patient_it_shows(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patients = {api.patient() for _ in range(3)}
    response = client.get(f"{API}/patients", headers={**api.headers, "X-Request-ID": "list-many"})
    assert response.status_code == 200
    assert {row.patient_id for row in _audit(engine, "list-many")} == patients


def test_audit_rows_hold_no_clinical_content(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    api.create("patients", {"family_name": "Zyxwvutsrq", "birth_date": "1970-01-01", "sex": "male"})
    with Session(engine) as session:
        rows = session.exec(select(AuditEvent).where(col(AuditEvent.tenant_id) == tenant)).all()
    assert rows
    assert all("Zyxwvutsrq" not in repr(row.model_dump()) for row in rows)
