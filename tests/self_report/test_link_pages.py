"""Issue #22, parts 2-4: the patient's link pages, server-rendered, no JavaScript (a plain HTTP client posts the
forms): the crisis resources on the screen that follows a positive item 9, the urgent reason raised before the
rest is answered, the response written with the patient as author, and every bad link or answer refused with a
clear page and nothing stored. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from service.instruments.codes import NOT_AT_ALL, SEVERAL_DAYS
from service.outbox import OutboxMessage
from service.records.audit import AuditEvent
from service.records.questionnaire import QuestionnaireResponse
from service.self_report.tables import Invitation, SelfReportSettings
from tests.builders import API, ApiDriver, sync_target_body
from tests.self_report.conftest import Clock
from tests.web.conftest import enrolled_patient, stored_status

PHQ9 = ["/44250-9", "/44255-8", "/44259-0", "/44254-1", "/44251-7", "/44258-2", "/44252-5", "/44253-3", "/44260-8"]
ITEM9 = "/44260-8"
CRISIS = "988 Suicide &amp; Crisis Lifeline"


@pytest.fixture
def patient_client(web_app: FastAPI) -> TestClient:
    """The patient's phone: no cookie, no token, only the link."""
    return TestClient(web_app)


def send(api: ApiDriver, patient_id: str, instrument: str = "phq-9", expect: int = 201) -> dict[str, Any]:
    return api.create(f"patients/{patient_id}/invitations", {"instrument": instrument, "channel": "none"}, expect)


def path_of(sent: dict[str, Any]) -> str:
    return "/r/" + str(sent["link"]).rsplit("/r/", 1)[1]


def answer(client: TestClient, path: str, link_id: str, code: str) -> httpx.Response:
    return client.post(path, data={"link_id": link_id, "answer": code}, follow_redirects=False)


def responses_of(engine: Engine, tenant: str, patient_id: str) -> list[QuestionnaireResponse]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(QuestionnaireResponse).where(
                    col(QuestionnaireResponse.tenant_id) == tenant, col(QuestionnaireResponse.patient_id) == patient_id
                )
            )
        )


def invitation(engine: Engine, invitation_id: str) -> Invitation:
    with Session(engine) as session:
        row = session.get(Invitation, invitation_id)
        assert row is not None
        return row


def test_item_9_shows_the_crisis_resources_before_the_rest_and_raises_the_reason_at_once(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str, web_engine: Engine
) -> None:
    coordinator = api_as(tenant, "coordinator")
    patient_id = enrolled_patient(api_as(tenant), family_name="Zzyzxname")
    sent = send(coordinator, patient_id)
    path = path_of(sent)

    page = patient_client.get(path)
    assert page.status_code == 200
    assert "Question 1 of 10" in page.text and "Little interest or pleasure in doing things" in page.text
    assert "Over the last 2 weeks, how often have you been bothered by any of the following problems?" in page.text
    assert "<script" not in page.text and "http://" not in page.text.replace("http://loinc.org", "")
    assert invitation(web_engine, sent["id"]).status == "opened"
    for link_id in PHQ9[:8]:
        saved = answer(patient_client, path, link_id, NOT_AT_ALL)
        assert saved.status_code == 303 and saved.headers["location"] == path
        assert CRISIS not in patient_client.get(path).text
    assert invitation(web_engine, sent["id"]).status == "partially_answered"
    assert responses_of(web_engine, tenant, patient_id) == []  # nothing written while no answer needs help

    crisis = answer(patient_client, path, ITEM9, SEVERAL_DAYS)
    # The save itself returns the next screen with the crisis resources (no redirect, no JavaScript).
    assert crisis.status_code == 200
    assert CRISIS in crisis.text and 'href="tel:988"' in crisis.text and "911" in crisis.text
    assert "Question 10 of 10" in crisis.text  # the rest is still to answer
    assert "will contact you" not in crisis.text and "call you" not in crisis.text  # the hospital did not say so
    # The care team sees it now: the answers so far are evidence, the plan status is at risk with item 9.
    [evidence] = responses_of(web_engine, tenant, patient_id)
    assert evidence.status == "in-progress" and evidence.item_scores[ITEM9] == 1
    status = stored_status(web_engine, tenant, patient_id)
    assert status.status == "at_risk" and "phq9_item9_positive" in status.open_flags

    assert "(optional)" in patient_client.get(path).text  # the difficulty item: passed over with no answer
    assert answer(patient_client, path, "/69722-7", "").status_code == 200  # still the crisis page's resources
    review = patient_client.get(path)
    assert "Check your answers" in review.text and CRISIS in review.text
    done = patient_client.post(f"{path}/submit")
    assert done.status_code == 200 and "Thank you" in done.text and CRISIS in done.text
    [response] = responses_of(web_engine, tenant, patient_id)
    assert response.id == evidence.id and response.status == "completed" and response.complete
    assert response.author_kind == "patient"
    assert response.author is not None
    assert (response.author["reference"], response.author["type"]) == (f"Patient/{patient_id}", "Patient")
    assert response.answered_by == response.author and response.total == 1
    assert response.authored_at >= evidence.authored_at
    row = invitation(web_engine, sent["id"])
    assert (row.status, row.response_id, row.sealed_token) == ("completed", response.id, None)
    status = stored_status(web_engine, tenant, patient_id)
    assert status.status == "at_risk" and "phq9_item9_positive" in status.open_flags

    # Served on /fhir like any response: author and source the Patient, authored the submission time.
    fhir = api_as(tenant).client.get(f"/fhir/QuestionnaireResponse/{response.id}", headers=api_as(tenant).headers)
    assert fhir.status_code == 200, fhir.text
    resource = fhir.json()
    assert resource["status"] == "completed"
    assert resource["author"]["reference"] == f"Patient/{patient_id}"
    assert resource["source"]["reference"] == f"Patient/{patient_id}"

    # Used: the link says so, kindly, and offers nothing else; nothing more is stored.
    for again in (patient_client.get(path), answer(patient_client, path, ITEM9, NOT_AT_ALL),
                  patient_client.post(f"{path}/submit")):  # fmt: skip
        assert again.status_code == 410
        assert "already been answered" in again.text and "<form" not in again.text and "<a " not in again.text
    assert len(responses_of(web_engine, tenant, patient_id)) == 1
    with Session(web_engine) as session:
        audited = session.exec(
            select(AuditEvent.action, AuditEvent.record_kind, AuditEvent.actor).where(
                col(AuditEvent.record_id) == sent["id"]
            )
        ).all()
    assert [a for a, _, x in audited if not x.startswith("Patient/")] == ["create"]
    assert {a for a, _, x in audited if x == f"Patient/{patient_id}"} == {"read", "update"}


def test_the_pages_carry_noindex_no_store_and_no_patient_name(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str
) -> None:
    patient_id = enrolled_patient(api_as(tenant), family_name="Quillfeather")
    path = path_of(send(api_as(tenant, "coordinator"), patient_id))
    page = patient_client.get(path)
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-robots-tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    title = re.search(r"<title>(.*)</title>", page.text)
    assert title and title.group(1) == "Questionnaire from your care team"
    assert "Quillfeather" not in page.text and "Pat" not in re.sub(r"[Pp]atient|Path", "", page.text).split("<body")[0]
    assert patient_id not in page.text and patient_id not in path
    # Only our own origin: no script, font or stylesheet from elsewhere.
    assert re.findall(r'(?:src|href)="(https?:)?//', page.text) == []


def test_bad_links_get_a_kind_page_and_store_nothing(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str, web_engine: Engine
) -> None:
    patient_id = enrolled_patient(api_as(tenant))
    sent = send(api_as(tenant, "coordinator"), patient_id)
    path = path_of(sent)
    token = path.removeprefix("/r/")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, token[:-1], token + "x", "not-a-token", token.upper()):
        for response in (patient_client.get(f"/r/{bad}"), answer(patient_client, f"/r/{bad}", PHQ9[0], NOT_AT_ALL)):
            assert response.status_code == 404, (bad, response.status_code)
            assert "This link is not valid" in response.text and "<form" not in response.text
            assert response.headers["cache-control"] == "no-store"
    row = invitation(web_engine, sent["id"])
    assert (row.status, row.answers, row.opened_at) == ("sent", [], None)


def test_out_of_range_and_missing_answers_are_refused_with_a_clear_page(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str, web_engine: Engine
) -> None:
    patient_id = enrolled_patient(api_as(tenant))
    sent = send(api_as(tenant, "coordinator"), patient_id)
    path = path_of(sent)
    for link_id, code in ((PHQ9[0], "LA9999-9"), (PHQ9[0], "4"), ("/99999-9", NOT_AT_ALL), (PHQ9[0], "")):
        refused = answer(patient_client, path, link_id, code)
        assert refused.status_code == 422, (link_id, code)
        assert "Choose one answer" in refused.text or "not one of the choices" in refused.text
        assert 'role="alert"' in refused.text
    assert invitation(web_engine, sent["id"]).answers == []
    answer(patient_client, path, PHQ9[0], NOT_AT_ALL)
    missing = patient_client.post(f"{path}/submit")
    assert missing.status_code == 422 and "Some questions are not answered yet" in missing.text
    assert missing.text.count('class="missing"') == 8
    assert responses_of(web_engine, tenant, patient_id) == []
    assert invitation(web_engine, sent["id"]).status == "partially_answered"


def test_an_oversized_body_is_refused_before_anything_runs(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str, web_engine: Engine, web_settings: Any
) -> None:
    patient_id = enrolled_patient(api_as(tenant))
    sent = send(api_as(tenant, "coordinator"), patient_id)
    body = "link_id=%2F44250-9&answer=" + "x" * (web_settings.max_body_bytes + 1)
    refused = patient_client.post(
        path_of(sent), content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert refused.status_code == 413
    assert "too large" in refused.text and refused.headers["x-robots-tag"] == "noindex, nofollow"
    assert invitation(web_engine, sent["id"]).answers == []


def test_an_expired_link_is_refused_and_partial_answers_resume_until_then(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str, web_engine: Engine, fixed_clock: Clock
) -> None:
    patient_id = enrolled_patient(api_as(tenant))
    sent = send(api_as(tenant, "coordinator"), patient_id)
    path = path_of(sent)
    answer(patient_client, path, PHQ9[0], NOT_AT_ALL)
    fixed_clock.move(days=5)
    resumed = patient_client.get(path)
    assert resumed.status_code == 200 and "Question 2 of 10" in resumed.text
    fixed_clock.move(days=4)  # past the week after the due day
    for response in (patient_client.get(path), answer(patient_client, path, PHQ9[1], NOT_AT_ALL),
                     patient_client.post(f"{path}/submit")):  # fmt: skip
        assert response.status_code == 410 and "This link has expired" in response.text
    assert invitation(web_engine, sent["id"]).answers[0]["link_id"] == PHQ9[0]  # untouched until the sweep
    assert responses_of(web_engine, tenant, patient_id) == []


def test_a_hospital_that_says_staff_will_call_says_so_with_its_own_words(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str, web_engine: Engine
) -> None:
    with Session(web_engine) as session:
        session.add(SelfReportSettings(tenant_id=tenant, crisis_text="Call the ward on 0800 000 000.",
                                       staff_will_call=True))  # fmt: skip
        session.commit()
    patient_id = enrolled_patient(api_as(tenant))
    path = path_of(send(api_as(tenant, "coordinator"), patient_id, "c-ssrs-screener"))
    first = answer(patient_client, path, "/93246-7", "LA33-6")  # yes: wished they were dead
    assert first.status_code == 200
    assert "Call the ward on 0800 000 000." in first.text and "will contact you" in first.text
    assert "988" not in first.text
    with Session(web_engine) as session:
        count = session.exec(
            select(func.count())
            .select_from(QuestionnaireResponse)
            .where(col(QuestionnaireResponse.patient_id) == patient_id)
        ).one()
    assert count == 1  # the evidence, in progress


def test_the_api_refuses_what_cannot_be_sent(
    api_as: Callable[..., ApiDriver], tenant: str, new_tenant: Callable[[], str]
) -> None:
    coordinator = api_as(tenant, "coordinator")
    patient_id = enrolled_patient(api_as(tenant))
    for body in (
        {"instrument": "madrs"},
        {"instrument": "phq-9", "channel": "pigeon"},
        {"instrument": "phq-9", "x": 1},
    ):
        refused = coordinator.client.post(
            f"{API}/patients/{patient_id}/invitations", json=body, headers=coordinator.headers
        )
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    other = api_as(new_tenant(), "coordinator")
    assert other.client.post(f"{API}/patients/{patient_id}/invitations", json={"instrument": "phq-9"},
                             headers=other.headers).status_code == 404  # fmt: skip
    assert other.client.get(f"{API}/patients/{patient_id}/invitations", headers=other.headers).status_code == 404
    listed = coordinator.client.get(f"{API}/patients/{patient_id}/invitations", headers=coordinator.headers)
    assert listed.status_code == 200 and listed.json()["invitations"] == []


def test_a_token_whose_patient_is_another_hospitals_opens_nothing(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str, web_engine: Engine,
    new_tenant: Callable[[], str],
) -> None:  # fmt: skip
    """An invitation row naming a patient its hospital does not have (a foreign tenant's) is an unknown link."""
    other = new_tenant()
    foreign_patient = enrolled_patient(api_as(other))
    token = "F" * 43
    with Session(web_engine) as session:
        session.add(
            Invitation(
                tenant_id=tenant,
                patient_id=foreign_patient,
                instrument="phq-9",
                due_date=datetime.now(UTC).date(),
                channel="none",
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                sent_by="test",
                expires_at=datetime.now(UTC) + timedelta(days=7),
            )
        )
        session.commit()
    for response in (patient_client.get(f"/r/{token}"), answer(patient_client, f"/r/{token}", PHQ9[0], NOT_AT_ALL),
                     patient_client.post(f"/r/{token}/submit")):  # fmt: skip
        assert response.status_code == 404 and "This link is not valid" in response.text
    assert responses_of(web_engine, other, foreign_patient) == []
    with Session(web_engine) as session:
        row = session.exec(select(Invitation).where(col(Invitation.patient_id) == foreign_patient)).one()
        assert (row.status, row.answers) == ("sent", [])


def test_a_submitted_response_is_queued_for_the_ehr_like_any_response(
    api_as: Callable[..., ApiDriver], patient_client: TestClient, tenant: str, web_engine: Engine
) -> None:
    api_as(tenant, "admin").create("sync/targets", sync_target_body(push=["questionnaire-responses"]))
    patient_id = enrolled_patient(api_as(tenant))
    path = path_of(send(api_as(tenant, "coordinator"), patient_id))
    for link_id in PHQ9:
        assert answer(patient_client, path, link_id, NOT_AT_ALL).status_code == 303
    assert answer(patient_client, path, "/69722-7", "LA6572-7").status_code == 303
    assert patient_client.post(f"{path}/submit").status_code == 200
    [response] = responses_of(web_engine, tenant, patient_id)
    assert (response.status, response.total, response.safety_findings) == ("completed", 0, [])
    with Session(web_engine) as session:
        queued = session.exec(
            select(OutboxMessage.record_kind).where(
                col(OutboxMessage.tenant_id) == tenant, col(OutboxMessage.record_id) == response.id
            )
        ).all()
    assert list(queued) == ["questionnaire-responses"]
