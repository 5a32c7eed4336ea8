"""The coordinator's worklist over the JSON API: order, "mine" and team, outreach, snooze, escalation, done, and
each refusal named (issue #21, part 1). Runs on SQLite and PostgreSQL (the database_url fixture)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.records.audit import AuditEvent
from service.worklist.staff import link_staff
from tests.builders import API, PHQ9_ITEMS, ApiDriver, enrollment_body, practitioner_body, questionnaire_body

NOW = datetime.now(UTC)
WORKLIST = f"{API}/worklist"


def _phq9(patient_id: str, days_ago: float, item9: int) -> dict[str, Any]:
    answers = [{"link_id": i, "value_integer": 2} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    return questionnaire_body(patient_id, authored_at=(NOW - timedelta(days=days_ago)).isoformat(), answers=answers)


@dataclass
class Clinic:
    tenant: str
    coordinator: dict[str, str]  # linked to the coordinator practitioner
    clinician: dict[str, str]  # linked to the psychiatrist
    psychiatrist_id: str
    therapist_id: str
    old_urgent: str  # patient ids
    fresh_urgent: str
    on_hold_urgent: str
    quiet: str  # enrolled, nothing recorded: overdue items only
    others: str  # another coordinator's patient


def _enrol(
    api: ApiDriver, family: str, coordinator: str, days_ago: int, telecom: list[Any] | None = None, **extra: Any
) -> str:
    patient_id = api.patient(family_name=family, given_name="Pat", telecom=telecom or [])
    start = (NOW - timedelta(days=days_ago)).date().isoformat()
    api.create("enrollments", enrollment_body(patient_id, start_date=start, coordinator_id=coordinator, **extra))
    return patient_id


@pytest.fixture
def clinic(
    client: TestClient, engine: Engine, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> Clinic:
    tenant = new_tenant()
    ehr = ApiDriver(client, auth(tenant, "ehr-system"))
    mine = ehr.create("practitioners", practitioner_body(family_name="Dlamini", role="coordinator"))["id"]
    theirs = ehr.create("practitioners", practitioner_body(family_name="Evans", role="coordinator"))["id"]
    psychiatrist = ehr.create("practitioners", practitioner_body(family_name="Adeyemi", role="psychiatrist"))["id"]
    therapist = ehr.create("practitioners", practitioner_body(family_name="Berg", role="therapist"))["id"]
    telecom = [
        {"system": "email", "value": "pat@example.org"},
        {"system": "phone", "value": "+1 555 0100", "use": "mobile", "rank": 1},
    ]
    old_urgent = _enrol(ehr, "Oldflag", mine, 80, telecom=telecom)
    ehr.create("questionnaire-responses", _phq9(old_urgent, 70, item9=1))
    fresh_urgent = _enrol(ehr, "Newflag", mine, 20)
    ehr.create("questionnaire-responses", _phq9(fresh_urgent, 1, item9=2))
    on_hold = _enrol(ehr, "Onhold", mine, 30, status="on-hold", status_reason="crisis admission")
    ehr.create("questionnaire-responses", _phq9(on_hold, 5, item9=1))
    quiet = _enrol(ehr, "Quiet", mine, 40)
    others = _enrol(ehr, "Elsewhere", theirs, 40)
    ehr.create("questionnaire-responses", _phq9(others, 3, item9=1))
    with Session(engine) as session:
        link_staff(session, tenant_id=tenant, subject="coord-1", practitioner_id=mine)
        link_staff(session, tenant_id=tenant, subject="psych-1", practitioner_id=psychiatrist)
        session.commit()
    return Clinic(
        tenant,
        auth(tenant, "coordinator", subject="coord-1"),
        auth(tenant, "clinician", subject="psych-1"),
        psychiatrist,
        therapist,
        old_urgent,
        fresh_urgent,
        on_hold,
        quiet,
        others,
    )


def _tasks(client: TestClient, headers: dict[str, str], view: str = "mine") -> list[dict[str, Any]]:
    response = client.get(WORKLIST, params={"view": view}, headers=headers)
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def _task(tasks: list[dict[str, Any]], patient_id: str, tier: str) -> dict[str, Any]:
    return next(t for t in tasks if t["patient_id"] == patient_id and t["tier"] == tier)


def test_urgent_oldest_first_then_overdue_then_due_today(client: TestClient, clinic: Clinic) -> None:
    tasks = _tasks(client, clinic.coordinator)
    tiers = [t["tier"] for t in tasks]
    assert tiers == sorted(tiers, key=["urgent", "overdue", "due_today"].index)
    urgent = [t for t in tasks if t["tier"] == "urgent"]
    assert [t["patient_id"] for t in urgent] == [clinic.old_urgent, clinic.on_hold_urgent, clinic.fresh_urgent]
    top = urgent[0]
    assert top["code"] == "phq9_item9_positive" and top["age"] == "10 weeks" and top["age_days"] == 70
    assert "contact the patient today" in top["message"]  # the plan status reason's own words
    assert top["patient_name"] == "Oldflag, Pat" and top["mrn"].startswith("MRN-")
    assert top["contact"] == ["mobile: +1 555 0100", "e-mail: pat@example.org", "prefers phone"]
    # CLINICAL.md §4: an open urgent finding is never hidden by the enrolment's state.
    assert _task(tasks, clinic.on_hold_urgent, "urgent")["enrollment_status"] == "on-hold"
    assert any(t["patient_id"] == clinic.quiet and t["tier"] == "overdue" for t in tasks)
    for earlier, later in pairwise(tasks):
        if earlier["tier"] == later["tier"]:
            assert earlier["since"] <= later["since"]


def test_mine_is_the_signed_in_coordinators_patients_and_team_is_everyone(
    client: TestClient, clinic: Clinic, auth: Callable[..., dict[str, str]]
) -> None:
    mine = {t["patient_id"] for t in _tasks(client, clinic.coordinator)}
    team = {t["patient_id"] for t in _tasks(client, clinic.coordinator, "team")}
    assert clinic.others not in mine and clinic.others in team and mine < team
    unlinked = auth(clinic.tenant, "coordinator", subject="nobody-linked")
    response = client.get(WORKLIST, headers=unlinked)
    assert response.json()["tasks"] == [] and response.json()["practitioner_id"] is None


def test_logging_a_call_is_kept_on_the_task_and_audited(client: TestClient, clinic: Clinic, engine: Engine) -> None:
    task = _task(_tasks(client, clinic.coordinator), clinic.old_urgent, "urgent")
    response = client.post(
        f"{WORKLIST}/tasks/{task['id']}/outreach",
        json={"channel": "phone", "outcome": "no_answer", "note": "rang twice"},
        headers={**clinic.coordinator, "X-Request-ID": "worklist-outreach-1"},
    )
    assert response.status_code == 201, response.text
    again = _task(_tasks(client, clinic.coordinator), clinic.old_urgent, "urgent")
    assert [(o["channel"], o["outcome"], o["by"]) for o in again["outreach"]] == [("phone", "no_answer", "coord-1")]
    with Session(engine) as session:
        rows = session.exec(select(AuditEvent).where(col(AuditEvent.request_id) == "worklist-outreach-1")).all()
    assert [(r.action, r.record_kind, r.patient_id, r.outcome) for r in rows] == [
        ("create", "outreach-attempts", clinic.old_urgent, "success")
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "phone", "outcome": "left a message"}, "outcome"),
        ({"channel": "pigeon", "outcome": "reached"}, "channel"),
        ({"channel": "phone", "outcome": "reached", "note": "x" * 2001}, "note"),
    ],
)
def test_an_unknown_outcome_or_channel_is_refused(
    client: TestClient, clinic: Clinic, body: dict[str, str], field: str
) -> None:
    task = _tasks(client, clinic.coordinator)[0]
    response = client.post(f"{WORKLIST}/tasks/{task['id']}/outreach", json=body, headers=clinic.coordinator)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def test_a_snoozed_task_leaves_todays_list_until_its_date(client: TestClient, clinic: Clinic) -> None:
    task = _task(_tasks(client, clinic.coordinator), clinic.quiet, "overdue")
    tomorrow = (NOW + timedelta(days=1)).date().isoformat()
    response = client.post(
        f"{WORKLIST}/tasks/{task['id']}/snooze",
        json={"until": tomorrow, "reason": "patient away until tomorrow"},
        headers=clinic.coordinator,
    )
    assert response.status_code == 200, response.text
    listed = client.get(WORKLIST, headers=clinic.coordinator).json()
    assert task["id"] not in {t["id"] for t in listed["tasks"]} and listed["snoozed"] == 1


def test_a_snooze_date_in_the_past_is_refused(client: TestClient, clinic: Clinic) -> None:
    task = _task(_tasks(client, clinic.coordinator), clinic.quiet, "overdue")
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    response = client.post(
        f"{WORKLIST}/tasks/{task['id']}/snooze", json={"until": yesterday, "reason": "x"}, headers=clinic.coordinator
    )
    assert response.status_code == 422 and "is in the past" in response.text


def test_an_urgent_finding_cannot_be_snoozed_past_today(client: TestClient, clinic: Clinic) -> None:
    task = _task(_tasks(client, clinic.coordinator), clinic.fresh_urgent, "urgent")
    tomorrow = (NOW + timedelta(days=1)).date().isoformat()
    response = client.post(
        f"{WORKLIST}/tasks/{task['id']}/snooze", json={"until": tomorrow, "reason": "busy"}, headers=clinic.coordinator
    )
    assert response.status_code == 422 and "cannot be snoozed past today" in response.text
    assert task["id"] in {t["id"] for t in _tasks(client, clinic.coordinator)}


def test_an_escalation_reaches_the_clinicians_own_list(client: TestClient, clinic: Clinic) -> None:
    assert _tasks(client, clinic.clinician) == []
    task = _task(_tasks(client, clinic.coordinator), clinic.fresh_urgent, "urgent")
    response = client.post(
        f"{WORKLIST}/tasks/{task['id']}/escalation",
        json={"clinician_id": clinic.psychiatrist_id, "note": "please assess before Thursday's infusion"},
        headers=clinic.coordinator,
    )
    assert response.status_code == 200, response.text
    theirs = _tasks(client, clinic.clinician)
    assert [t["id"] for t in theirs] == [task["id"]]
    assert theirs[0]["escalated_to_name"].startswith("Adeyemi")
    assert theirs[0]["escalation_note"] == "please assess before Thursday's infusion"


def test_an_escalation_to_a_non_clinician_is_refused(client: TestClient, clinic: Clinic) -> None:
    task = _tasks(client, clinic.coordinator)[0]
    for clinician_id, words in ((clinic.therapist_id, "not a clinician"), ("no-such-id", "no practitioner")):
        response = client.post(
            f"{WORKLIST}/tasks/{task['id']}/escalation", json={"clinician_id": clinician_id}, headers=clinic.coordinator
        )
        assert response.status_code == 422 and words in response.text


def test_done_takes_a_task_off_but_never_an_urgent_finding(client: TestClient, clinic: Clinic) -> None:
    tasks = _tasks(client, clinic.coordinator)
    overdue = _task(tasks, clinic.quiet, "overdue")
    urgent = _task(tasks, clinic.old_urgent, "urgent")
    assert client.post(f"{WORKLIST}/tasks/{overdue['id']}/done", headers=clinic.coordinator).status_code == 200
    refused = client.post(f"{WORKLIST}/tasks/{urgent['id']}/done", headers=clinic.coordinator)
    assert refused.status_code == 409 and "acknowledgement" in refused.text
    left = {t["id"] for t in _tasks(client, clinic.coordinator)}
    assert overdue["id"] not in left and urgent["id"] in left


def test_another_tenants_task_is_not_found(
    client: TestClient, clinic: Clinic, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    task = _tasks(client, clinic.coordinator)[0]
    stranger = auth(new_tenant(), "coordinator")
    for action, body in (
        ("outreach", {"channel": "phone", "outcome": "reached"}),
        ("snooze", {"until": NOW.date().isoformat(), "reason": "x"}),
        ("escalation", {"clinician_id": clinic.psychiatrist_id}),
        ("done", None),
    ):
        response = client.post(f"{WORKLIST}/tasks/{task['id']}/{action}", json=body, headers=stranger)
        assert response.status_code == 404, (action, response.text)
    assert client.get(WORKLIST, params={"view": "team"}, headers=stranger).json()["tasks"] == []


@pytest.mark.parametrize("role", ["admin", "ehr-system"])
def test_only_coordinators_and_clinicians_have_a_worklist(
    client: TestClient, clinic: Clinic, auth: Callable[..., dict[str, str]], role: str
) -> None:
    assert client.get(WORKLIST, headers=auth(clinic.tenant, role)).status_code == 403
