"""Issue #22 item 5, e-mail: a real SMTP server (aiosmtpd) on a loopback port receives the invitation with the
link and no clinical content; the reminder before expiry and none after the questionnaire ended; a server that is
down is retried with backoff, then the message is a dead letter; a permanent refusal is a dead letter at once;
STARTTLS and implicit TLS with a certificate from a throwaway CA (trustme), verified, with a login; a patient
with no e-mail address reads "cannot be sent". On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.db.unit_of_work import unit_of_work
from service.self_report import invitations
from service.self_report.tables import InvitationMessage
from service.settings import Settings
from tests.builders import ApiDriver
from tests.messaging.conftest import (
    NOON,
    SMTP_PASSWORD,
    SMTP_USER,
    Certificates,
    SenderClock,
    SmtpServerFixture,
    channel_settings,
    invite,
    run_sender,
)

# Words that would tell a reader of the message what it is about: the instrument, the condition, the treatment.
CLINICAL_WORDS = ("phq", "patient health", "depress", "suicid", "self-harm", "ketamine", "esketamine", "mood", "9")


def messages_of(engine: Engine, invitation_id: str) -> list[InvitationMessage]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(InvitationMessage)
                .where(col(InvitationMessage.invitation_id) == invitation_id)
                .order_by(col(InvitationMessage.id))
            ).all()
        )


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None, "a plain-text part and an HTML alternative"
    text = (str(part.get_content()).replace("\r\n", "\n") for part in (plain, html))
    return next(text), next(text)


def test_the_invitation_arrives_with_the_link_and_nothing_clinical(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    settings = channel_settings(web_settings, smtp=server)
    invited = invite(web_engine, settings, api_as(tenant), tenant)

    stats = run_sender(web_engine, settings, tenant)

    assert stats.sent == 1
    [mail] = server.mailbox.to(invited.address)
    plain, html = parts(mail)
    assert invited.link in plain and f'href="{invited.link}"' in html
    assert "Your care team asked you to complete a short questionnaire." in plain
    assert "expires on Tuesday 15 December 2026 at 00:00 (UTC)" in plain  # a week after the due day ends
    assert mail["Subject"] == "A short questionnaire from your care team"
    assert mail["From"] == "care-team@hospital.example.org" and mail["Auto-Submitted"] == "auto-generated"
    everything = " ".join([str(mail["Subject"]), plain, html]).replace(invited.link, "<link>").lower()
    for word in CLINICAL_WORDS:
        assert word not in everything, f"{word!r} is clinical content"
    assert "rivera" not in everything and "sam" not in everything.split(), "no patient name"
    # Nothing remote: the only URL in the HTML is the link itself, and there is no image at all.
    assert "<img" not in html.lower() and html.count("http") == 2  # the href and the copyable text
    [row] = messages_of(web_engine, invited.invitation_id)[:1]
    assert (row.kind, row.status, row.channel, row.attempts, row.last_error) == ("invitation", "sent", "email", 1, None)
    assert row.delivered_at is not None
    # A second sweep sends nothing again.
    assert run_sender(web_engine, settings, tenant).sent == 0
    assert len(server.mailbox.to(invited.address)) == 1


def test_one_reminder_before_expiry_and_none_once_the_questionnaire_has_ended(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    settings = channel_settings(web_settings, smtp=server, message_reminder_hours=24)
    api = api_as(tenant)
    invited = invite(web_engine, settings, api, tenant)
    run_sender(web_engine, settings, tenant)
    invitation, reminder = messages_of(web_engine, invited.invitation_id)
    assert (reminder.kind, reminder.status) == ("reminder", "pending")
    assert reminder.next_attempt_at == invited.expires_at - timedelta(hours=24)
    assert reminder.payload == invitation.payload

    sender_clock.set(invited.expires_at - timedelta(hours=25))
    assert run_sender(web_engine, settings, tenant).sent == 0  # not yet
    # The link expires at midnight, so the reminder falls due at midnight the day before: in quiet hours, it
    # waits until 08:00, still 16 hours before expiry.
    sender_clock.set(invited.expires_at - timedelta(hours=23))
    assert run_sender(web_engine, settings, tenant).deferred == 1
    sender_clock.set(invited.expires_at - timedelta(hours=16))
    assert run_sender(web_engine, settings, tenant).sent == 1
    _, second = server.mailbox.to(invited.address)
    assert second["Subject"] == "Reminder: a short questionnaire from your care team"
    plain, _ = parts(second)
    assert invited.link in plain and plain.startswith("Hello,\n\nA reminder: your care team asked you")
    # Only one reminder, and none after expiry.
    sender_clock.set(invited.expires_at + timedelta(hours=1))
    assert run_sender(web_engine, settings, tenant).sent == 0
    assert [m.status for m in messages_of(web_engine, invited.invitation_id)] == ["sent", "sent"]

    # A cancelled questionnaire: its reminder is not sent.
    sender_clock.set(NOON)
    cancelled = invite(web_engine, settings, api, tenant)
    run_sender(web_engine, settings, tenant)
    with unit_of_work(web_engine) as session:
        ctx = invitations.system_context(tenant, settings, str(uuid.uuid4()))
        invitations.cancel_invitation(session, ctx, cancelled.patient_id, cancelled.invitation_id, now=NOON)
    sender_clock.set(cancelled.expires_at - timedelta(hours=16))
    assert run_sender(web_engine, settings, tenant).sent == 0
    assert [m.status for m in messages_of(web_engine, cancelled.invitation_id)] == ["sent", "cancelled"]
    assert len(server.mailbox.to(cancelled.address)) == 1


def test_a_reminder_that_would_come_with_the_invitation_is_not_queued(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sender_clock: SenderClock,
) -> None:
    """The lead time is longer than the link's life: the invitation is the only message."""
    server = smtp_server()
    settings = channel_settings(web_settings, smtp=server, message_reminder_hours=24 * 10)
    invited = invite(web_engine, settings, api_as(tenant), tenant)
    run_sender(web_engine, settings, tenant)
    assert [m.kind for m in messages_of(web_engine, invited.invitation_id)] == ["invitation"]


def test_a_server_that_is_down_is_retried_with_backoff_then_the_message_is_a_dead_letter(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    server.stop()  # nothing listens on its port any more
    settings = channel_settings(web_settings, smtp=server, message_max_attempts=3)
    invited = invite(web_engine, settings, api_as(tenant), tenant)

    assert run_sender(web_engine, settings, tenant).failed == 1
    [row] = messages_of(web_engine, invited.invitation_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error is not None and f"SMTP 127.0.0.1:{server.port}" in row.last_error
    assert row.next_attempt_at > NOON  # backoff: not due again at once
    assert run_sender(web_engine, settings, tenant).failed == 0  # so a second sweep now does not try

    sender_clock.set(row.next_attempt_at)
    assert run_sender(web_engine, settings, tenant).failed == 1
    [row] = messages_of(web_engine, invited.invitation_id)
    sender_clock.set(row.next_attempt_at)
    assert run_sender(web_engine, settings, tenant).dead == 1
    [row] = messages_of(web_engine, invited.invitation_id)
    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error is not None and row.last_error.startswith("gave up after 3 attempts: SMTP 127.0.0.1")
    # No reminder follows a message that was never sent.
    sender_clock.set(invited.expires_at - timedelta(hours=1))
    assert run_sender(web_engine, settings, tenant).sent == 0


def test_a_server_back_before_the_last_attempt_gets_the_message(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sender_clock: SenderClock,
) -> None:
    down = smtp_server()
    down.stop()
    settings = channel_settings(web_settings, smtp=down)
    invited = invite(web_engine, settings, api_as(tenant), tenant)
    assert run_sender(web_engine, settings, tenant).failed == 1
    back = smtp_server(port=down.port)
    [row] = messages_of(web_engine, invited.invitation_id)
    sender_clock.set(row.next_attempt_at)
    assert run_sender(web_engine, settings, tenant).sent == 1
    assert len(back.mailbox.to(invited.address)) == 1
    assert messages_of(web_engine, invited.invitation_id)[0].attempts == 2


def test_a_permanent_refusal_is_a_dead_letter_at_once(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    settings = channel_settings(web_settings, smtp=server)
    api = api_as(tenant)
    address = f"gone-{uuid.uuid4().hex[:8]}@example.org"
    server.mailbox.refuse.add(address)
    invited = invite(web_engine, settings, api, tenant, telecom=[{"system": "email", "value": address}])
    assert run_sender(web_engine, settings, tenant).dead == 1
    [row] = messages_of(web_engine, invited.invitation_id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error == f"SMTP 127.0.0.1:{server.port} refused the recipient (reply 550)"


def test_starttls_and_implicit_tls_with_a_verified_certificate_and_a_login(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    certificates: Certificates,
    sender_clock: SenderClock,
) -> None:
    api = api_as(tenant)
    login: dict[str, Any] = {
        "smtp_username": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
        "smtp_ca_file": certificates.ca_file,
    }
    for tls in ("starttls", "tls"):
        server = smtp_server(tls=tls, certificates=certificates)
        settings = channel_settings(web_settings, smtp=server, smtp_tls=tls, **login)
        invited = invite(web_engine, settings, api, tenant)
        assert run_sender(web_engine, settings, tenant).sent == 1, (tls, messages_of(web_engine, invited.invitation_id))
        [mail] = server.mailbox.to(invited.address)
        assert invited.link in parts(mail)[0]

    # Plain SMTP to a server that requires STARTTLS is refused by it (530, permanent): retrying the same way
    # cannot help, so it is a dead letter at once, with the server's words.
    server = smtp_server(tls="starttls", certificates=certificates)
    plain = channel_settings(web_settings, smtp=server, smtp_tls="none")
    invited = invite(web_engine, plain, api, tenant)
    assert run_sender(web_engine, plain, tenant).dead == 1
    [row] = messages_of(web_engine, invited.invitation_id)
    assert row.last_error is not None and "answered 530" in row.last_error and "STARTTLS" in row.last_error
    assert server.mailbox.to(invited.address) == []


def test_a_certificate_from_an_unknown_ca_is_not_trusted(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    certificates: Certificates,
    sender_clock: SenderClock,
) -> None:
    """Without TANDEM_SMTP_CA_FILE the system's CAs are used, and they never signed the throwaway CA's cert."""
    server = smtp_server(tls="starttls", certificates=certificates)
    settings = channel_settings(
        web_settings, smtp=server, smtp_tls="starttls", smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD
    )
    invited = invite(web_engine, settings, api_as(tenant), tenant)
    assert run_sender(web_engine, settings, tenant).failed == 1
    [row] = messages_of(web_engine, invited.invitation_id)
    assert row.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in row.last_error
    assert server.mailbox.to(invited.address) == []


def test_no_e_mail_address_reads_cannot_be_sent(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    settings = channel_settings(web_settings, smtp=server)  # e-mail only: no SMS gateway configured
    api = api_as(tenant)
    landline = [{"system": "phone", "value": "+1 555 0100", "use": "home", "rank": 1}]
    invited = invite(web_engine, settings, api, tenant, telecom=landline)
    assert run_sender(web_engine, settings, tenant).cannot_send == 1
    [row] = messages_of(web_engine, invited.invitation_id)
    assert (row.status, row.last_error) == ("cannot_send", "cannot be sent: no e-mail address")
    assert server.mailbox.messages == []

    # A mobile number, but no SMS gateway here: the words say so.
    mobile = [{"system": "sms", "value": "+1 555 0101", "rank": 1}]
    invited = invite(web_engine, settings, api, tenant, telecom=mobile)
    run_sender(web_engine, settings, tenant)
    [row] = messages_of(web_engine, invited.invitation_id)
    assert row.last_error == (
        "cannot be sent: no e-mail address (the patient has a text message contact, but that channel is not configured)"
    )
