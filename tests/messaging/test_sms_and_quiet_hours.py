"""Issue #22 item 5, text messages and timing: the SMS webhook adapter posts {to, body} to a loopback gateway,
signed with the shared secret (HMAC, or as a bearer token), retried on 5xx and a dead letter on other refusals,
its URL checked like an EHR's; the patient's preferred channel is respected; quiet hours in the patient's own
time zone defer a message to their end (a settable clock). On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.self_report.tables import InvitationMessage
from service.settings import Settings
from tests.builders import ApiDriver
from tests.messaging.conftest import (
    NOON,
    SMS_SECRET,
    SenderClock,
    SmsGateway,
    SmtpServerFixture,
    channel_settings,
    invite,
    run_sender,
)

MOBILE = "+1 312 555 0142"


def messages_of(engine: Engine, invitation_id: str) -> list[InvitationMessage]:
    with Session(engine) as session:
        query = select(InvitationMessage).where(col(InvitationMessage.invitation_id) == invitation_id)
        return list(session.exec(query.order_by(col(InvitationMessage.id))).all())


def texts_first(address: str) -> list[dict[str, object]]:
    return [
        {"system": "email", "value": address, "rank": 2},
        {"system": "phone", "value": MOBILE, "use": "mobile", "rank": 1},
    ]


def test_a_patient_who_prefers_texts_gets_a_signed_webhook_request(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sms_gateway: SmsGateway,
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    settings = channel_settings(web_settings, smtp=server, gateway=sms_gateway)
    invited = invite(web_engine, settings, api_as(tenant), tenant, telecom=texts_first("pat@example.org"))

    assert run_sender(web_engine, settings, tenant).sent == 1
    [request] = sms_gateway.requests
    assert request.json["to"] == MOBILE and set(request.json) == {"to", "body"}
    body = str(request.json["body"])
    assert body.startswith("Your care team asked you to complete a short questionnaire. " + invited.link)
    assert "phq" not in body.lower() and "rivera" not in body.lower()
    timestamp = request.headers["X-Tandem-Timestamp"]
    expected = hmac.new(SMS_SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Tandem-Signature"] == f"sha256={expected}"
    assert "Authorization" not in request.headers and SMS_SECRET not in str(request.headers)
    assert request.headers["Content-Type"] == "application/json"
    assert server.mailbox.messages == []  # the e-mail address is there, but texts are preferred
    [row, _reminder] = messages_of(web_engine, invited.invitation_id)
    assert (row.status, row.channel) == ("sent", "sms")


def test_bearer_mode_and_a_named_channel(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    smtp_server: Callable[..., SmtpServerFixture],
    sms_gateway: SmsGateway,
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    settings = channel_settings(web_settings, smtp=server, gateway=sms_gateway, sms_webhook_auth="bearer")
    api = api_as(tenant)
    invite(web_engine, settings, api, tenant, telecom=texts_first("pat@example.org"))
    # The coordinator chose e-mail for this one: the preference for texts does not override it.
    by_mail = invite(web_engine, settings, api, tenant, telecom=texts_first("mail@example.org"), channel="email")
    assert run_sender(web_engine, settings, tenant).sent == 2
    [request] = sms_gateway.requests
    assert request.headers["Authorization"] == f"Bearer {SMS_SECRET}"
    assert len(server.mailbox.to("mail@example.org")) == 1
    assert messages_of(web_engine, by_mail.invitation_id)[0].channel == "email"


def test_gateway_failures_are_retried_or_dead_letters_and_its_url_is_checked(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    sms_gateway: SmsGateway,
    sender_clock: SenderClock,
) -> None:
    settings = channel_settings(web_settings, gateway=sms_gateway)
    api = api_as(tenant)
    sms_gateway.status = 503
    unavailable = invite(web_engine, settings, api, tenant, telecom=texts_first("a@example.org"))
    assert run_sender(web_engine, settings, tenant).failed == 1
    [row] = messages_of(web_engine, unavailable.invitation_id)
    assert (row.status, row.last_error) == ("failed", "SMS gateway 127.0.0.1 answered HTTP 503")
    sms_gateway.status = 202
    sender_clock.set(row.next_attempt_at)
    assert run_sender(web_engine, settings, tenant).sent == 1
    assert len(sms_gateway.requests) == 2  # the retry went through

    sms_gateway.status = 400
    refused = invite(web_engine, settings, api, tenant, telecom=texts_first("b@example.org"))
    assert run_sender(web_engine, settings, tenant).dead == 1
    assert messages_of(web_engine, refused.invitation_id)[0].status == "dead"

    # The gateway's host on loopback without being allowed: refused before any request, in words, retried.
    sms_gateway.status = 202
    unsafe = channel_settings(web_settings, gateway=sms_gateway, sync_allowed_hosts=[])
    blocked = invite(web_engine, unsafe, api, tenant, telecom=texts_first("c@example.org"))
    before = len(sms_gateway.requests)
    assert run_sender(web_engine, unsafe, tenant).failed == 1
    [row] = messages_of(web_engine, blocked.invitation_id)
    assert row.last_error is not None and "non-public address" in row.last_error
    assert "TANDEM_SMS_WEBHOOK_URL" in row.last_error and len(sms_gateway.requests) == before


def test_quiet_hours_in_the_patients_zone_defer_to_their_end(
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
    # 03:30 UTC is 21:30 the evening before in Chicago (CST, UTC-6): quiet until 08:00 there, 14:00 UTC.
    evening = datetime(2026, 12, 8, 3, 30, tzinfo=UTC)
    sender_clock.set(evening)
    invited = invite(web_engine, settings, api, tenant, time_zone="America/Chicago", now=evening)
    assert run_sender(web_engine, settings, tenant).deferred == 1
    [row] = messages_of(web_engine, invited.invitation_id)
    assert (row.status, row.attempts) == ("pending", 0)  # waiting is not a failed attempt
    assert row.next_attempt_at == datetime(2026, 12, 8, 14, 0, tzinfo=UTC)
    assert row.last_error == "waiting for the end of quiet hours in America/Chicago"
    assert server.mailbox.messages == []
    sender_clock.set(datetime(2026, 12, 8, 13, 59, tzinfo=UTC))
    assert run_sender(web_engine, settings, tenant).sent == 0  # not due yet
    sender_clock.set(datetime(2026, 12, 8, 14, 0, tzinfo=UTC))
    assert run_sender(web_engine, settings, tenant).sent == 1
    assert len(server.mailbox.to(invited.address)) == 1

    # The same instant is daytime for a patient in Oslo (04:30 CET is quiet too, but 10:00 UTC is not).
    sender_clock.set(datetime(2026, 12, 8, 10, 0, tzinfo=UTC))
    oslo = invite(web_engine, settings, api, tenant, time_zone="Europe/Oslo", now=NOON)
    assert run_sender(web_engine, settings, tenant).sent == 1
    assert len(server.mailbox.to(oslo.address)) == 1


def test_quiet_hours_are_set_per_tenant_and_can_be_turned_off(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    new_tenant: Callable[[], str],
    smtp_server: Callable[..., SmtpServerFixture],
    sender_clock: SenderClock,
) -> None:
    server = smtp_server()
    night_owls = new_tenant()
    settings = channel_settings(
        web_settings, smtp=server, message_quiet_hours_by_tenant={night_owls: "", tenant: "11:00-13:00"}
    )
    sender_clock.set(NOON)  # 12:00 UTC: inside this tenant's 11:00-13:00
    quiet = invite(web_engine, settings, api_as(tenant), tenant)
    assert run_sender(web_engine, settings, tenant).deferred == 1
    assert messages_of(web_engine, quiet.invitation_id)[0].next_attempt_at == datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    sender_clock.set(datetime(2026, 12, 8, 2, 0, tzinfo=UTC))  # 02:00: quiet by the default, not for night_owls
    owl = invite(web_engine, settings, api_as(night_owls), night_owls, now=datetime(2026, 12, 8, 2, 0, tzinfo=UTC))
    assert run_sender(web_engine, settings, night_owls).sent == 1
    assert len(server.mailbox.to(owl.address)) == 1
