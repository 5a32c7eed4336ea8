"""Issue #22, "Done when": the measurement schedule sends a PHQ-9 invitation by SMTP to a real local SMTP server
(aiosmtpd); a phone-sized Chromium (390 x 844) follows the link from the received e-mail, answers item 9 "Several
days", sees the crisis resources before sending the rest, sends; the plan status turns at risk with the item-9
reason; the QuestionnaireResponse's author (and source) is the patient; a second use of the link is refused; an
expired link (the clock moved past its expiry) is refused. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service import clock
from service.self_report.schedule import send_due_invitations
from service.self_report.tables import Invitation
from service.settings import Settings
from tests.builders import ApiDriver, enrollment_body
from tests.live_server import serve
from tests.messaging.conftest import SmtpServerFixture, channel_settings, run_sender
from tests.messaging.test_email import parts
from tests.web.chromium import chromium_browser
from tests.web.conftest import NOW, stored_status

pytestmark = pytest.mark.browser
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/r/[A-Za-z0-9_-]{43})\s")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def _enrolled_with_email(api: ApiDriver) -> tuple[str, str]:
    """Enrolled three days ago, no baseline yet (the baseline PHQ-9 is due), reachable by e-mail only."""
    address = f"pat-{uuid.uuid4().hex[:8]}@example.org"
    patient_id = api.patient(
        family_name="Mailworth", given_name="Pat", telecom=[{"system": "email", "value": address, "rank": 1}]
    )
    api.create("enrollments", enrollment_body(patient_id, start_date=(NOW - timedelta(days=3)).date().isoformat()))
    return patient_id, address


def _link_in_mail(server: SmtpServerFixture, address: str) -> str:
    [mail] = server.mailbox.to(address)
    plain, html = parts(mail)
    found = LINK.search(plain)
    assert found, plain
    assert found.group(1) in html
    return found.group(1)


def _invitation(engine: Engine, patient_id: str) -> Invitation:
    with Session(engine) as session:
        [invitation] = session.exec(select(Invitation).where(col(Invitation.patient_id) == patient_id)).all()
        return invitation


def test_the_schedule_mails_a_phq9_and_a_phone_answers_it_through_the_link(
    chromium: Any,
    web_app: FastAPI,
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = smtp_server()
    api = api_as(tenant)
    patient_id, address = _enrolled_with_email(api)
    later_id, later_address = _enrolled_with_email(api)
    with serve(web_app) as base_url:
        # The patient's link points at this server; no quiet hours (the real clock decides the hour here).
        settings = channel_settings(web_settings, smtp=server, public_base_url=base_url, message_quiet_hours="")
        # The schedule (the sweep's step) invites both; the sender mails both invitations.
        assert send_due_invitations(web_engine, settings, clock.now_utc()) >= 2
        invitation = _invitation(web_engine, patient_id)
        assert (invitation.instrument, invitation.sent_by, invitation.channel) == ("phq-9", "schedule", "preferred")
        assert run_sender(web_engine, settings, tenant).sent == 2
        link = _link_in_mail(server, address)
        later_link = _link_in_mail(server, later_address)
        path = link.removeprefix(base_url)

        context = chromium.new_context(viewport={"width": 390, "height": 844}, base_url=base_url)
        page = context.new_page()
        opened = page.goto(link)
        assert opened is not None and opened.status == 200
        for number in range(1, 9):
            assert page.get_by_text(f"Question {number} of 10").is_visible()
            page.get_by_label("Not at all").check()
            page.get_by_role("button", name="Save and continue").click()
        assert page.get_by_role("heading", name="Help is available now").count() == 0
        page.get_by_label("Several days").check()
        page.get_by_role("button", name="Save and continue").click()
        # Before the rest is sent: the crisis resources on the screen, and the last question still to answer.
        assert page.get_by_role("heading", name="Help is available now").is_visible()
        assert page.get_by_role("link", name="Call 988").is_visible()
        assert page.get_by_text("Question 10 of 10").is_visible()
        page.get_by_label("Somewhat difficult").check()
        page.get_by_role("button", name="Save and continue").click()
        page.get_by_role("button", name="Send my answers").click()
        assert page.get_by_role("heading", name="Thank you").is_visible()

        # The care team's view: at risk, for item 9.
        status = stored_status(web_engine, tenant, patient_id)
        assert status.status == "at_risk"
        reasons = {r["code"]: r for r in status.detail["reasons"]}
        assert "phq9_item9_positive" in reasons and reasons["phq9_item9_positive"]["severity"] == "urgent"
        # The response is the patient's own: author and source are the patient.
        found = api.client.get(f"/fhir/QuestionnaireResponse?patient={patient_id}", headers=api.headers)
        assert found.status_code == 200, found.text
        bundle = found.json()
        [entry] = bundle["entry"]
        response = entry["resource"]
        assert response["status"] == "completed"
        assert response["author"]["reference"] == f"Patient/{patient_id}"
        assert response["source"]["reference"] == f"Patient/{patient_id}"
        item9 = [i for i in response["item"] if i["linkId"].endswith("44260-8")]
        assert item9 and item9[0]["answer"][0]["valueCoding"]["code"] == "LA6569-3"

        # The same link a second time: refused, kindly, offering nothing else.
        again = page.goto(path)
        assert again is not None and again.status == 410
        assert page.get_by_text("already been answered").is_visible()
        assert page.get_by_role("button").count() == 0 and page.locator("form").count() == 0

        # No reminder after submission: the clock at the reminder's time sends nothing to this patient.
        monkeypatch.setattr("service.messaging.sending.now_utc", lambda: invitation.expires_at - timedelta(hours=16))
        run_sender(web_engine, settings, tenant)
        assert len(server.mailbox.to(address)) == 1

        # The other patient's link, once the clock has passed its expiry: refused.
        expired_at = _invitation(web_engine, later_id).expires_at + timedelta(minutes=1)
        monkeypatch.setattr(clock, "now_utc", lambda: expired_at)
        expired = page.goto(later_link)
        assert expired is not None and expired.status == 410
        assert page.get_by_text("This link has expired").is_visible()
        assert page.get_by_role("button").count() == 0
        assert page.locator("form").count() == 0
        context.close()
