"""The computed plan in FHIR: CarePlan status and progress, Goal achievement, and a Flag per urgent reason
that points at its evidence and turns inactive once a clinician acknowledges it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import fhirkit
from fastapi.testclient import TestClient

from tests.builders import API, PHQ9_ITEMS, ApiDriver, enrollment_body, questionnaire_body


def _phq9(patient_id: str, item9: int, each: int, days_ago: float) -> dict[str, object]:
    answers = [{"link_id": i, "value_integer": each} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    authored = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return questionnaire_body(patient_id, answers=answers, authored_at=authored)


def test_an_urgent_reason_is_a_flag_until_acknowledged(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patient_id = api.patient()
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    enrollment_id = api.create("enrollments", enrollment_body(patient_id, start_date=start))["id"]
    api.create("questionnaire-responses", _phq9(patient_id, item9=0, each=2, days_ago=4))
    positive = api.create("questionnaire-responses", _phq9(patient_id, item9=2, each=1, days_ago=1))

    flags = client.get("/fhir/Flag", params={"patient": patient_id}, headers=api.headers).json()
    [flag] = [e["resource"] for e in flags["entry"]]
    assert flag["status"] == "active"
    assert flag["code"]["coding"][0]["code"] == "phq9_item9_positive"
    assert {"reference": f"QuestionnaireResponse/{positive['id']}"} in [e["valueReference"] for e in flag["extension"]]
    assert [i for i in fhirkit.validate(flag) if i.severity == "error"] == []

    plan = client.get(f"/fhir/CarePlan/{enrollment_id}", headers=api.headers).json()
    status_codes = [c["code"] for c in plan["extension"][0]["valueCodeableConcept"]["coding"]]
    assert status_codes[0] == "at_risk" and "phq9_item9_positive" in status_codes
    assert any("measurements" in a["progress"][0]["text"] for a in plan["activity"])
    goal = client.get("/fhir/Goal", params={"patient": patient_id}, headers=api.headers).json()["entry"][0]["resource"]
    assert goal["achievementStatus"]["coding"][0]["code"] in ("improving", "in-progress")

    reason = next(
        r
        for r in client.get(f"{API}/patients/{patient_id}/plan-status", headers=api.headers).json()["statuses"][0][
            "reasons"
        ]
        if r["code"] == "phq9_item9_positive"
    )
    acknowledged = client.post(
        f"{API}/patients/{patient_id}/flag-acknowledgements",
        headers=auth(tenant, "clinician"),
        json={
            "enrollment_id": enrollment_id,
            "code": reason["code"],
            "occurrence_id": reason["occurrence_id"],
            "note": "Called; safe",
        },
    )
    assert acknowledged.status_code == 201, acknowledged.text
    after = client.get(f"/fhir/Flag/{flag['id']}", headers=api.headers).json()
    assert after["status"] == "inactive"
    assert after["period"]["end"]
    history = client.get(f"/fhir/Flag/{flag['id']}/_history", headers=api.headers).json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["inactive", "active"]
