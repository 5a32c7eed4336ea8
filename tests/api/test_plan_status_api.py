"""Plan status is stored with every write, read back by the caseload, and explained; flags need a clinician."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from service.caseload.tables import PlanStatusRow
from service.patient_refresh import sweep
from service.plan_status import IV_KETAMINE_CBT
from service.sweep import sweep_thread
from tests.builders import (
    API,
    PHQ9_ITEMS,
    ApiDriver,
    administration_body,
    enrollment_body,
    practitioner_body,
    questionnaire_body,
)

NOW = datetime.now(UTC)


def _at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def _phq9(patient_id: str, days_ago: float, item9: int = 0, each: int = 2, **extra: Any) -> dict[str, Any]:
    answers = [{"link_id": i, "value_integer": each} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    return questionnaire_body(patient_id, authored_at=_at(days_ago), answers=answers, **extra)


@pytest.fixture
def api(client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]) -> ApiDriver:
    return ApiDriver(client, auth(tenant, "ehr-system"))


def _enrolled(api: ApiDriver, days_ago: int = 3, **extra: Any) -> tuple[str, str]:
    patient_id = api.patient()
    start = (NOW - timedelta(days=days_ago)).date().isoformat()
    enrollment = api.create("enrollments", enrollment_body(patient_id, start_date=start, **extra))
    return patient_id, enrollment["id"]


def _status(api: ApiDriver, patient_id: str, **params: str) -> dict[str, Any]:
    response = api.client.get(f"{API}/patients/{patient_id}/plan-status", params=params, headers=api.headers)
    assert response.status_code == 200, response.text
    statuses: list[dict[str, Any]] = response.json()["statuses"]
    return statuses[0]


def test_item_9_positive_puts_the_patient_at_risk_until_a_clinician_acknowledges(
    api: ApiDriver, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    patient_id, enrollment_id = _enrolled(api)
    api.create("questionnaire-responses", _phq9(patient_id, days_ago=4))
    api.create("ketamine-administrations", administration_body(patient_id, started_at=_at(2), ended_at=_at(1.97)))
    positive = api.create("questionnaire-responses", _phq9(patient_id, days_ago=1, item9=1))

    status = _status(api, patient_id)
    assert status["status"] == "at_risk"
    reason = next(r for r in status["reasons"] if r["code"] == "phq9_item9_positive")
    assert reason["record_ids"] == [positive["id"]]
    assert reason["severity"] == "urgent" and reason["open"]
    assert "item 9" in reason["message"]

    caseload = api.client.get(f"{API}/caseload", params={"status": "at_risk"}, headers=auth(tenant, "coordinator"))
    assert [row["patient_id"] for row in caseload.json()["rows"]] == [patient_id]
    assert caseload.json()["rows"][0]["open_flags"] == ["phq9_item9_positive"]

    body = {
        "enrollment_id": enrollment_id,
        "code": reason["code"],
        "occurrence_id": reason["occurrence_id"],
        "note": "Called the patient; safety plan reviewed, no intent",
    }
    url = f"{API}/patients/{patient_id}/flag-acknowledgements"
    assert api.client.post(url, json=body, headers=auth(tenant, "coordinator")).status_code == 403
    acknowledged = api.client.post(url, json=body, headers=auth(tenant, "clinician", subject="dr-adeyemi"))
    assert acknowledged.status_code == 201, acknowledged.text
    after = acknowledged.json()["statuses"][0]
    assert after["status"] != "at_risk"
    closed = next(r for r in after["reasons"] if r["code"] == "phq9_item9_positive")
    assert not closed["open"]
    assert closed["acknowledgement"]["by"] == "dr-adeyemi"
    assert api.client.post(url, json=body, headers=auth(tenant, "clinician")).status_code == 409

    again = api.create("questionnaire-responses", _phq9(patient_id, days_ago=0.5, item9=2))
    reopened = _status(api, patient_id)
    assert reopened["status"] == "at_risk"
    assert [r["record_ids"] for r in reopened["reasons"] if r["code"] == "phq9_item9_positive" and r["open"]] == [
        [again["id"]]
    ]


def test_history_as_of_an_earlier_instant(api: ApiDriver) -> None:
    patient_id, _ = _enrolled(api)
    api.create("questionnaire-responses", _phq9(patient_id, days_ago=4))
    api.create("questionnaire-responses", _phq9(patient_id, days_ago=1, item9=1))
    assert _status(api, patient_id)["status"] == "at_risk"
    earlier = _status(api, patient_id, as_of=_at(2))
    assert "phq9_item9_positive" not in {r["code"] for r in earlier["reasons"]}


def test_a_write_updates_the_caseload_in_the_same_transaction(api: ApiDriver, engine: Engine, tenant: str) -> None:
    patient_id, enrollment_id = _enrolled(api)
    with Session(engine) as session:
        row = session.get(PlanStatusRow, (tenant, enrollment_id))
        assert row is not None and row.status != "at_risk"
    api.create(
        "ketamine-administrations",
        administration_body(
            patient_id,
            started_at=_at(1),
            ended_at=_at(0.97),
            vital_signs=[{"taken_at": _at(0.98), "systolic_mmhg": 185, "diastolic_mmhg": 112}],
        ),
    )
    with Session(engine) as session:
        row = session.get(PlanStatusRow, (tenant, enrollment_id))
        assert row is not None
        assert row.status == "at_risk"
        assert ",bp_urgent," in row.open_flags


def test_reading_the_caseload_never_recomputes(api: ApiDriver, engine: Engine, tenant: str) -> None:
    _, enrollment_id = _enrolled(api)
    with Session(engine) as session:
        before = session.get(PlanStatusRow, (tenant, enrollment_id))
        assert before is not None
    api.client.get(f"{API}/caseload", headers=api.headers)
    with Session(engine) as session:
        after = session.get(PlanStatusRow, (tenant, enrollment_id))
        assert after is not None and after.computed_at == before.computed_at


def test_the_sweep_moves_patients_whose_due_dates_passed(api: ApiDriver, engine: Engine, tenant: str) -> None:
    patient_id, enrollment_id = _enrolled(api, days_ago=0)
    api.create("questionnaire-responses", _phq9(patient_id, days_ago=1))
    api.create("ketamine-administrations", administration_body(patient_id, started_at=_at(0.1), ended_at=_at(0.07)))
    assert _status(api, patient_id)["status"] == "on_track"
    later = NOW + timedelta(days=21)
    assert sweep(engine, canonical_base="https://tandem.test/fhir", now=later) >= 1
    with Session(engine) as session:
        row = session.get(PlanStatusRow, (tenant, enrollment_id))
        assert row is not None
        assert row.status == "needs_attention"
        assert ",ketamine_overdue," in row.open_flags
    # The sweep re-projects the CarePlan too, so EHRs reading FHIR see the same status as the caseload.
    plan = api.client.get(f"/fhir/CarePlan/{enrollment_id}", headers=api.headers).json()
    status_codes = [c["code"] for c in plan["extension"][0]["valueCodeableConcept"]["coding"]]
    assert status_codes[0] == "needs_attention" and "ketamine_overdue" in status_codes


def test_caseload_filters_sorts_and_counts(api: ApiDriver, tenant: str, auth: Callable[..., dict[str, str]]) -> None:
    coordinator = ApiDriver(api.client, auth(tenant, "admin")).create(
        "practitioners", practitioner_body(role="coordinator", family_name="Dlamini")
    )["id"]
    risky, _ = _enrolled(api, coordinator_id=coordinator)
    api.create("questionnaire-responses", _phq9(risky, days_ago=1, item9=1))
    calm, _ = _enrolled(api, days_ago=1)
    headers = auth(tenant, "coordinator")
    everyone = api.client.get(f"{API}/caseload", headers=headers).json()
    assert everyone["total"] == 2
    assert everyone["rows"][0]["patient_id"] == risky  # most urgent first
    assert everyone["counts_by_status"]["at_risk"] == 1
    mine = api.client.get(f"{API}/caseload", params={"coordinator_id": coordinator}, headers=headers).json()
    assert [r["patient_id"] for r in mine["rows"]] == [risky]
    assert mine["rows"][0]["coordinator_name"] == "Signe Dlamini"
    flagged = api.client.get(f"{API}/caseload", params={"flag": "phq9_item9_positive"}, headers=headers).json()
    assert [r["patient_id"] for r in flagged["rows"]] == [risky]
    by_weeks = api.client.get(f"{API}/caseload", params={"sort": "weeks", "descending": True}, headers=headers).json()
    assert [r["patient_id"] for r in by_weeks["rows"]] == [risky, calm]
    paged = api.client.get(f"{API}/caseload", params={"page_size": 1, "page": 2}, headers=headers).json()
    assert (len(paged["rows"]), paged["total"]) == (1, 2)
    bad = api.client.get(f"{API}/caseload", params={"sort": "shoe_size"}, headers=headers)
    assert bad.status_code == 422


def test_protocols_are_data_and_validated(api: ApiDriver, tenant: str, auth: Callable[..., dict[str, str]]) -> None:
    admin = auth(tenant, "admin")
    listed = api.client.get(f"{API}/protocols", headers=admin).json()
    assert {p["id"] for p in listed} >= {"iv-ketamine-cbt", "esketamine-cbt"}
    mine = IV_KETAMINE_CBT.model_dump(mode="json") | {"version": "site-2", "induction_sessions": 4}
    created = api.client.post(f"{API}/protocols", json=mine, headers=admin)
    assert created.status_code == 201, created.text
    assert api.client.post(f"{API}/protocols", json=mine, headers=admin).status_code == 409
    impossible = mine | {"version": "site-3", "induction_sessions": 30}
    refused = api.client.post(f"{API}/protocols", json=impossible, headers=admin)
    assert refused.status_code == 422
    assert "cannot fit" in refused.json()["detail"]
    patient_id = api.patient()
    pinned = api.create("enrollments", enrollment_body(patient_id))
    assert pinned["protocol_version"] == "site-2"  # the newest version, kept from now on
    unknown = api.client.post(
        f"{API}/enrollments", json=enrollment_body(patient_id, protocol_id="magic-cbt"), headers=api.headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "protocol_id"


def test_the_in_process_sweep_recomputes_due_statuses(api: ApiDriver, engine: Engine, tenant: str) -> None:
    _, enrollment_id = _enrolled(api)
    with Session(engine) as session:
        row = session.get(PlanStatusRow, (tenant, enrollment_id))
        assert row is not None
        stale_at = row.computed_at - timedelta(days=30)
        row.computed_at = stale_at
        row.next_recompute_at = stale_at
        session.add(row)
        session.commit()
    sweeper = sweep_thread(engine, every_seconds=1, canonical_base="https://tandem.test/fhir")
    sweeper.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with Session(engine) as session:
                row = session.get(PlanStatusRow, (tenant, enrollment_id))
                if row is not None and row.computed_at > stale_at:
                    break
            time.sleep(0.2)
    finally:
        sweeper.stop()
    assert row is not None and row.computed_at > stale_at


def test_putting_an_enrollment_on_hold_after_a_crisis_keeps_the_patient_at_the_top(
    api: ApiDriver, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    """Issue #21 item 5 (CLINICAL.md section 4): on hold *because of* a crisis must not sort the patient last or
    drop them out of the at-risk view while the urgent finding is open."""
    crisis_patient, crisis_enrollment = _enrolled(api)
    api.create("questionnaire-responses", _phq9(crisis_patient, days_ago=4))
    api.create("questionnaire-responses", _phq9(crisis_patient, days_ago=1, item9=2))
    steady_patient, _ = _enrolled(api)
    api.create("questionnaire-responses", _phq9(steady_patient, days_ago=1, each=3))
    etag = api.client.get(f"{API}/enrollments/{crisis_enrollment}", headers=api.headers).headers["etag"]
    held = api.client.patch(
        f"{API}/enrollments/{crisis_enrollment}",
        json={"status": "on-hold", "status_reason": "inpatient admission"},
        headers={**api.headers, "If-Match": etag},
    )
    assert held.status_code == 200, held.text

    status = _status(api, crisis_patient)
    assert (status["status"], status["enrollment_status"]) == ("at_risk", "on-hold")
    coordinator = auth(tenant, "coordinator")
    at_risk = api.client.get(f"{API}/caseload", params={"status": "at_risk"}, headers=coordinator).json()
    assert [row["patient_id"] for row in at_risk["rows"]] == [crisis_patient]
    everyone = api.client.get(f"{API}/caseload", headers=coordinator).json()
    assert everyone["rows"][0]["patient_id"] == crisis_patient
    assert everyone["rows"][0]["open_flags"] == ["phq9_item9_positive"]
    assert everyone["counts_by_status"].get("on_hold", 0) == 0

    reason = next(r for r in status["reasons"] if r["code"] == "phq9_item9_positive")
    acknowledged = api.client.post(
        f"{API}/patients/{crisis_patient}/flag-acknowledgements",
        json={
            "enrollment_id": crisis_enrollment,
            "code": reason["code"],
            "occurrence_id": reason["occurrence_id"],
            "note": "Admitted; inpatient team has the safety plan",
        },
        headers=auth(tenant, "clinician"),
    )
    assert acknowledged.status_code == 201, acknowledged.text
    assert acknowledged.json()["statuses"][0]["status"] == "on_hold"
