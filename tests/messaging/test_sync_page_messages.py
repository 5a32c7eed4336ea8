"""Patient messages that need a person are shown where the EHR sync's dead letters are (the sync page): a dead
letter and a "cannot be sent: no e-mail address", with the patient's name for one the caller may see; an
administrator sends one again (CSRF-checked, audited), and only a dead or unsendable one of their own hospital.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.records.audit import AuditEvent
from service.self_report.tables import InvitationMessage
from service.settings import Settings
from tests.builders import ApiDriver
from tests.messaging.conftest import SenderClock, SmtpServerFixture, channel_settings, invite, run_sender
from tests.web.conftest import Browser


def test_dead_and_unsendable_messages_are_shown_and_can_be_sent_again(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    new_tenant: Callable[[], str],
    smtp_server: Callable[..., SmtpServerFixture],
    browser: Callable[..., Browser],
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    server.stop()
    settings = channel_settings(web_settings, smtp=server, message_max_attempts=1)
    api = api_as(tenant)
    dead = invite(web_engine, settings, api, tenant)
    landline = [{"system": "phone", "value": "+1 555 0100", "use": "home"}]
    unsendable = invite(web_engine, settings, api, tenant, telecom=landline)
    run_sender(web_engine, settings, tenant)

    admin = browser()
    admin.sign_in(tenant, "admin")
    page = admin.get("/sync")
    assert page.status_code == 200
    assert "Messages to patients" in page.text
    assert "dead: 1" in page.text and "cannot send: 1" in page.text
    assert "cannot be sent: no e-mail address" in page.text
    assert f"gave up after 1 attempts: SMTP 127.0.0.1:{server.port}" in page.text
    assert page.text.count('href="/patients/') >= 2 and "Rivera, Sam" in page.text

    with Session(web_engine) as session:
        [row] = session.exec(
            select(InvitationMessage).where(col(InvitationMessage.invitation_id) == unsendable.invitation_id)
        ).all()
        [gone] = session.exec(
            select(InvitationMessage).where(col(InvitationMessage.invitation_id) == dead.invitation_id)
        ).all()
    # Forged token: refused, nothing changed.
    assert admin.post(f"/sync/patient-messages/{row.id}/replay", {}, csrf="forged").status_code == 403
    # Another hospital's administrator: not found.
    other = browser()
    other.sign_in(new_tenant(), "admin")
    other.get("/sync")
    assert other.post(f"/sync/patient-messages/{row.id}/replay", {}, csrf=other.csrf()).status_code == 404

    # The address is added; the administrator sends it again.
    replayed = admin.post(f"/sync/patient-messages/{row.id}/replay", {}, csrf=admin.csrf())
    assert replayed.status_code == 303 and replayed.headers["location"] == f"/sync?replayed_message={row.id}"
    with Session(web_engine) as session:
        again = session.get(InvitationMessage, row.id)
        assert again is not None and (again.status, again.attempts) == ("pending", 0)
        audit = session.exec(
            select(AuditEvent).where(
                col(AuditEvent.tenant_id) == tenant,
                col(AuditEvent.record_kind) == "patient-messages",
                col(AuditEvent.record_id) == str(row.id),
            )
        ).all()
        assert [(a.action, a.outcome, a.patient_id) for a in audit] == [("update", "success", unsendable.patient_id)]
    assert "Patient message" in admin.get(f"/sync?replayed_message={row.id}").text
    # A message that is pending already is not "replayed" twice.
    assert admin.post(f"/sync/patient-messages/{row.id}/replay", {}, csrf=admin.csrf()).status_code == 409
    assert gone.status == "dead"
