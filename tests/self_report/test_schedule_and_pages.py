"""Issue #22, parts 1 and 6: the schedule sends each measurement due once; the patient page and the worklist send
one now (CSRF-checked forms); the patient page lists what was sent, opened, completed or expired; the caseload's
"next due" says "sent, not completed" apart from "not sent". On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.self_report.schedule import send_due_invitations
from service.self_report.tables import Invitation, InvitationMessage
from service.settings import Settings
from tests.builders import ApiDriver
from tests.self_report.conftest import Clock
from tests.web.conftest import Browser, enrolled_patient, stored_status


def _invitations(engine: Engine, patient_id: str) -> list[Invitation]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Invitation).where(col(Invitation.patient_id) == patient_id).order_by(col(Invitation.created_at))
            )
        )


def test_the_schedule_sends_the_measurement_due_once(
    api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine, web_settings: Settings, fixed_clock: Clock
) -> None:
    # Enrolled three days ago with no baseline yet: the baseline PHQ-9 is due.
    patient_id = enrolled_patient(api_as(tenant), days_ago=3)
    status = stored_status(web_engine, tenant, patient_id)
    due = status.detail["next_due"]["measurement"]
    assert due is not None
    assert send_due_invitations(web_engine, web_settings, fixed_clock.now) >= 1
    [sent] = _invitations(web_engine, patient_id)
    assert (sent.instrument, sent.channel, sent.sent_by, sent.status) == ("phq-9", "preferred", "schedule", "sent")
    assert sent.enrollment_id == status.enrollment_id
    with Session(web_engine) as session:
        messages = session.exec(select(InvitationMessage).where(col(InvitationMessage.invitation_id) == sent.id)).all()
        assert [m.kind for m in messages] == ["invitation"]
    # Once: the next sweeps send nothing more for this due date, nor while the invitation is open.
    send_due_invitations(web_engine, web_settings, fixed_clock.move(hours=1))
    send_due_invitations(web_engine, web_settings, fixed_clock.move(days=2))
    assert len(_invitations(web_engine, patient_id)) == 1


def test_an_enrolment_on_hold_is_sent_nothing(
    api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine, web_settings: Settings, fixed_clock: Clock
) -> None:
    patient_id = enrolled_patient(api_as(tenant), days_ago=3, status="on-hold", status_reason="patient travelling")
    send_due_invitations(web_engine, web_settings, fixed_clock.now)
    assert _invitations(web_engine, patient_id) == []


def test_the_patient_page_sends_and_lists_and_the_caseload_tells_sent_from_not_sent(
    api_as: Callable[..., ApiDriver], browser: Callable[..., Browser], tenant: str, web_engine: Engine
) -> None:
    sent_to = enrolled_patient(api_as(tenant), family_name="Sentworth")
    not_sent = enrolled_patient(api_as(tenant), family_name="Unsentby")
    b = browser()
    b.sign_in(tenant, "coordinator", subject="coordinator-ana")
    page = b.get(f"/patients/{sent_to}")
    assert "Questionnaires sent to the patient" in page.text and "No questionnaire has been sent" in page.text
    forged = b.post(f"/patients/{sent_to}/invitations", {"instrument": "phq-9", "channel": "none"}, csrf="forged")
    assert forged.status_code == 403 and _invitations(web_engine, sent_to) == []
    csrf = b.csrf() if "csrf_token" in b.get(f"/patients/{sent_to}").text else ""
    shown = b.post(f"/patients/{sent_to}/invitations", {"instrument": "phq-9", "channel": "none"}, csrf=csrf)
    assert shown.status_code == 201 and "/r/" in shown.text and "shown only now" in shown.text
    [invitation] = _invitations(web_engine, sent_to)
    assert invitation.sent_by == "coordinator-ana"
    listed = b.get(f"/patients/{sent_to}")
    assert "/r/" not in listed.text  # the link is shown once
    assert "PHQ-9" in listed.text and ">Sent" in listed.text

    caseload = b.get("/?q=Sentworth")
    assert "sent, not completed" in caseload.text
    caseload = b.get("/?q=Unsentby")
    assert "not sent" in caseload.text and "sent, not completed" not in caseload.text
    del not_sent


def test_the_worklist_sends_phq9_now(
    api_as: Callable[..., ApiDriver], browser: Callable[..., Browser], tenant: str, web_engine: Engine
) -> None:
    patient_id = enrolled_patient(api_as(tenant), family_name="Worklistee", days_ago=30)
    b = browser()
    b.sign_in(tenant, "coordinator", subject="coordinator-ana")
    page = b.get("/worklist?view=team")
    assert "Send PHQ-9 now" in page.text
    sent = b.post("/worklist/invitations", {"patient_id": patient_id, "instrument": "phq-9", "view": "team"},
                  csrf=b.csrf())  # fmt: skip
    assert sent.status_code == 303 and sent.headers["location"] == "/worklist?view=team&notice=questionnaire"
    assert "Questionnaire sent" in b.get(sent.headers["location"]).text
    [invitation] = _invitations(web_engine, patient_id)
    assert (invitation.instrument, invitation.channel) == ("phq-9", "preferred")
    assert invitation.expires_at - invitation.created_at > timedelta(days=6)
