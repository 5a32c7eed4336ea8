"""Corrections: a record sent in error is marked entered-in-error or deleted; the plan status is recomputed,
the audit keeps what happened, and the correction is queued for the EHRs that received the record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.outbox import OutboxMessage
from service.records.audit import AuditEvent
from tests.builders import API, ApiDriver, enrollment_body, sync_target_body
from tests.fhir.support import fhir_headers
from tests.fhir.test_facade_conformance import _phq9_response


@pytest.fixture
def api(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> ApiDriver:
    return ApiDriver(client, auth(tenant, "ehr-system"))


def _positive_phq9(client: TestClient, api: ApiDriver, patient_id: str) -> str:
    resource = _phq9_response(f"Patient/{patient_id}", answer="LA6570-1")
    created = client.post("/fhir/QuestionnaireResponse", json=resource, headers=fhir_headers(api.headers))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _status(api: ApiDriver, patient_id: str) -> dict[str, Any]:
    statuses: list[dict[str, Any]] = api.client.get(
        f"{API}/patients/{patient_id}/plan-status", headers=api.headers
    ).json()["statuses"]
    return statuses[0]


def test_delete_retracts_the_resource_recomputes_and_queues_the_correction(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]], api: ApiDriver
) -> None:
    ApiDriver(client, auth(tenant, "admin")).create("sync/targets", sync_target_body(push=["questionnaire-responses"]))
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    response_id = _positive_phq9(client, api, patient_id)
    assert "phq9_item9_positive" in {r["code"] for r in _status(api, patient_id)["reasons"]}

    headers = fhir_headers(api.headers, **{"X-Request-ID": "correction-1"})
    deleted = client.delete(f"/fhir/QuestionnaireResponse/{response_id}", headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert client.get(f"/fhir/QuestionnaireResponse/{response_id}", headers=headers).status_code == 410
    history = client.get(f"/fhir/QuestionnaireResponse/{response_id}/_history", headers=headers).json()
    assert history["entry"][0]["response"]["status"].startswith("410")
    assert history["entry"][1]["resource"]["status"] == "entered-in-error"
    assert "phq9_item9_positive" not in {r["code"] for r in _status(api, patient_id)["reasons"]}
    kept = client.get(f"{API}/questionnaire-responses/{response_id}", headers=api.headers).json()
    assert kept["status"] == "entered-in-error"
    with Session(engine) as session:
        queued = session.exec(select(OutboxMessage).where(col(OutboxMessage.record_id) == response_id)).all()
        audited = session.exec(
            select(AuditEvent).where(col(AuditEvent.request_id) == "correction-1", col(AuditEvent.action) == "delete")
        ).all()
    assert sorted(m.record_version for m in queued) == [1, 2]  # the correction travels to the EHR
    assert [a.patient_id for a in audited] == [patient_id]


def test_entered_in_error_by_update_counts_for_nothing(api: ApiDriver) -> None:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))
    response_id = _positive_phq9(api.client, api, patient_id)
    changed = api.client.patch(
        f"{API}/questionnaire-responses/{response_id}",
        json={"status": "entered-in-error"},
        headers={**api.headers, "If-Match": 'W/"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert "phq9_item9_positive" not in {r["code"] for r in _status(api, patient_id)["reasons"]}
    fhir = api.client.get(f"/fhir/QuestionnaireResponse/{response_id}", headers=api.headers).json()
    assert fhir["status"] == "entered-in-error"


def test_what_cannot_be_deleted(client: TestClient, api: ApiDriver) -> None:
    patient_id = api.patient()
    headers = fhir_headers(api.headers)
    assert client.delete(f"/fhir/Patient/{patient_id}", headers=headers).status_code == 405
    assert client.delete("/fhir/QuestionnaireResponse/not-there", headers=headers).status_code == 404
    assert client.delete("/fhir/Observation/x", headers=headers).status_code == 405  # derived: correct its record
