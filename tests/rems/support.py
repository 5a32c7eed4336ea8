"""An esketamine session and the REMS form's page, PDF and API, driven as a clinician would (issue #23, part 4)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from pypdf import PdfReader

from service.auth.principal import Role
from service.auth.tokens import mint_dev_token
from service.settings import Settings
from tests.builders import API, ApiDriver, administration_body, enrollment_body

NOW = datetime.now(UTC)
MISSING = "missing — to be completed by the clinician"
FIELD = re.compile(
    r'<div id="field-([a-z0-9_-]+)" class="rems-field( rems-missing)?">\s*<dt>.*?</dt>\s*<dd>(.*?)</dd>', re.S
)


def headers(settings: Settings, tenant: str, role: Role = "clinician", subject: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(settings, tenant=tenant, role=role, subject=subject)}"}


def esketamine_session(api: ApiDriver, patient_id: str, *, days_ago: float = 10, **overrides: Any) -> dict[str, Any]:
    start = NOW - timedelta(days=days_ago)
    values: dict[str, Any] = dict(
        drug="esketamine",
        route="intranasal",
        dose_mg=84,
        dose_mg_per_kg=None,
        body_weight_kg=None,
        started_at=start.isoformat(),
        ended_at=(start + timedelta(minutes=10)).isoformat(),
        lot_number="LOT-E42",
        vital_signs=[
            {"taken_at": (start - timedelta(minutes=10)).isoformat(), "systolic_mmhg": 128, "diastolic_mmhg": 82},
            {
                "taken_at": (start + timedelta(minutes=41)).isoformat(),
                "systolic_mmhg": 146,
                "diastolic_mmhg": 90,
                "spo2_percent": 96,
            },
            {
                "taken_at": (start + timedelta(minutes=125)).isoformat(),
                "systolic_mmhg": 130,
                "diastolic_mmhg": 80,
                "spo2_percent": 98,
            },
        ],
        sedation_score=4,
        dissociation_score=18,
        observation_minutes=120,
    )
    body = administration_body(patient_id, **{**values, **overrides})
    return api.create("ketamine-administrations", body)


def esketamine_patient(api: ApiDriver) -> str:
    patient_id = api.patient(family_name="Rems", given_name="Robin")
    start = (NOW - timedelta(days=20)).date().isoformat()
    api.create("enrollments", enrollment_body(patient_id, protocol_id="esketamine-cbt", start_date=start))
    return patient_id


def form_fields(html: str) -> dict[str, tuple[bool, str]]:
    """field key -> (marked missing, the shown text without tags)."""
    return {key: (bool(missing), re.sub(r"<[^>]+>", " ", body)) for key, missing, body in FIELD.findall(html)}


def pdf_text(body: bytes) -> str:
    reader = PdfReader(io.BytesIO(body))
    return "\n".join(page.extract_text() for page in reader.pages)


def plan_reasons(client: TestClient, settings: Settings, tenant: str, patient_id: str) -> set[tuple[str, str, bool]]:
    response = client.get(f"{API}/patients/{patient_id}/plan-status", headers=headers(settings, tenant))
    assert response.status_code == 200, response.text
    return {
        (r["code"], r["occurrence_id"], r["open"]) for status in response.json()["statuses"] for r in status["reasons"]
    }


def submit(client: TestClient, settings: Settings, tenant: str, session_id: str, submitted_at: str,
           role: Role = "clinician") -> Any:  # fmt: skip
    return client.post(
        f"{API}/ketamine-administrations/{session_id}/rems-form/submission",
        json={"submitted_at": submitted_at},
        headers=headers(settings, tenant, role, subject=f"{role}-kim"),
    )
