"""A deceased patient (Patient.deceased[x], CLINICAL.md §5), on SQLite and PostgreSQL: the enrolment ends with that
reason, the urgent outreach reasons stop, the plan status says "deceased" plainly and the caseload no longer
lists the patient among those needing work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.builders import API, PHQ9_ITEMS, ApiDriver, enrollment_body, questionnaire_body
from tests.fhir.support import fhir_headers, patient_resource

NOW = datetime.now(UTC)


def _phq9_item9_positive(patient_id: str) -> dict[str, Any]:
    answers = [{"link_id": i, "value_integer": 2} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": 2})
    return questionnaire_body(patient_id, authored_at=(NOW - timedelta(days=1)).isoformat(), answers=answers)


def test_a_deceased_patient_ends_the_enrolment_and_outreach_stops(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    ehr = auth(tenant, "ehr-system")
    headers = fhir_headers(ehr)
    created = client.post("/fhir/Patient", json=patient_resource(), headers=headers)
    assert created.status_code == 201, created.text
    patient = created.json()
    api = ApiDriver(client, ehr)
    start = (NOW - timedelta(days=3)).date().isoformat()
    enrollment = api.create("enrollments", enrollment_body(patient["id"], start_date=start))
    api.create("questionnaire-responses", _phq9_item9_positive(patient["id"]))
    before = client.get(f"{API}/patients/{patient['id']}/plan-status", headers=ehr).json()["statuses"][0]
    assert before["status"] == "at_risk"  # item 9 answered: an urgent reason, open

    died = {**patient, "deceasedDateTime": (NOW - timedelta(hours=5)).isoformat(timespec="seconds")}
    served_as = died["deceasedDateTime"].replace("+00:00", "Z")
    put = client.put(
        f"/fhir/Patient/{patient['id']}", json=died, headers={**headers, "If-Match": created.headers["etag"]}
    )
    assert put.status_code == 200, put.text
    assert put.json()["deceasedDateTime"] == served_as

    ended = client.get(f"{API}/enrollments/{enrollment['id']}", headers=ehr).json()
    assert ended["status"] == "discontinued"
    assert ended["status_reason"] == f"Patient deceased ({died['deceasedDateTime']})"
    status = client.get(f"{API}/patients/{patient['id']}/plan-status", headers=ehr).json()["statuses"][0]
    assert status["status"] == "discontinued"
    assert [(r["code"], r["severity"]) for r in status["reasons"]] == [("patient_deceased", "info")]
    assert status["reasons"][0]["message"].startswith("Deceased: the patient has died")
    assert all(due is None for due in status["next_due"].values())
    coordinator = auth(tenant, "coordinator")
    at_risk = client.get(f"{API}/caseload", params={"status": "at_risk"}, headers=coordinator).json()["rows"]
    assert at_risk == []
    [row] = client.get(f"{API}/caseload", params={"status": "discontinued"}, headers=coordinator).json()["rows"]
    assert (row["patient_id"], row["deceased"], row["open_flags"]) == (patient["id"], True, [])
