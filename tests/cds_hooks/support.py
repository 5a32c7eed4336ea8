"""What the CDS Hooks tests share on Tandem's side: the service's URLs, patients in a known state, registration."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from service.auth.tokens import mint_dev_token
from tests.builders import PHQ9_ITEMS, ApiDriver, enrollment_body, questionnaire_body
from tests.cds_hooks.ehr import EhrWeb, fhir_patient

SERVICE_BASE = "https://tandem.hospital.test"
SERVICE = "tandem-plan-status"
MRN_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"
NOW = datetime.now(UTC)


def api(app: TestClient, tenant: str, role: str = "ehr-system") -> ApiDriver:
    settings = app.app.state.settings  # type: ignore[attr-defined]
    return ApiDriver(app, {"Authorization": f"Bearer {mint_dev_token(settings, tenant=tenant, role=role)}"})  # type: ignore[arg-type]


def registered(cds_cli: Callable[..., Any], tenant: str, ehr: EhrWeb, *extra: str) -> str:
    issuer = f"https://ehr.hospital.test/{uuid.uuid4().hex[:8]}"
    result = cds_cli("register", tenant, issuer, "--jwks-url", ehr.jwks_url, *extra)
    assert result.exit_code == 0, result.output
    assert f"{SERVICE_BASE}/cds-services/{SERVICE}" in result.output
    return issuer


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def phq9(patient_id: str, days_ago: float, *, item9: int) -> dict[str, Any]:
    answers = [{"link_id": i, "value_integer": 2} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    return questionnaire_body(patient_id, authored_at=at(days_ago), answers=answers)


def enrolled(driver: ApiDriver, mrn: str, *, days_ago: int, **patient: Any) -> str:
    patient_id = driver.patient(identifiers=[{"system": MRN_SYSTEM, "value": mrn}], **patient)
    start = (NOW - timedelta(days=days_ago)).date().isoformat()
    driver.create("enrollments", enrollment_body(patient_id, start_date=start))
    return patient_id


def plan(app: TestClient, tenant: str, patient_id: str) -> dict[str, Any]:
    headers = api(app, tenant).headers
    statuses: dict[str, Any] = app.get(f"/api/v1/patients/{patient_id}/plan-status", headers=headers).json()
    return statuses["statuses"][0]


def prefetch(ehr_id: str, mrn: str) -> dict[str, Any]:
    return {"patient": fhir_patient(ehr_id, MRN_SYSTEM, mrn)}
