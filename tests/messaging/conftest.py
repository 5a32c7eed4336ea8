"""Fixtures of the messaging tests: a real SMTP server (aiosmtpd) on a free loopback port, with STARTTLS or
implicit TLS under a throwaway CA (trustme) when asked; an SMS gateway stand-in (a loopback HTTP server that
records what it is sent); a patient with contact details and an invitation; a settable clock for the sender.

The pages' test app comes from tests/web/conftest.py (both databases, through `database_url`).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer  # noqa: N811 - the server class, named as a class
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import Engine

from service.db.unit_of_work import unit_of_work
from service.messaging import sending
from service.messaging.sending import MessageSender, MessageStats
from service.self_report import invitations
from service.settings import Settings
from tests.builders import ApiDriver
from tests.web.conftest import api_as, browser, web_app, web_engine, web_settings  # noqa: F401 - fixtures

# Noon UTC on a weekday: outside the default quiet hours (21:00-08:00) for a patient in UTC.
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SMTP_USER, SMTP_PASSWORD = "tandem", "correct horse battery staple"
SMS_SECRET = "sms-gateway-shared-secret-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """aiosmtpd's handler: keeps every message it accepts; refuses recipients listed in `refuse` with 550."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: SmtpServer, session: SmtpSession, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SmtpServer, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for envelope, message in self.messages if address in envelope.rcpt_tos]


def _authenticator(
    server: SmtpServer, session: SmtpSession, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok)


@dataclass
class SmtpServerFixture:
    mailbox: Mailbox
    port: int
    controller: Controller
    ca_file: str | None = None

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Certificates:
    ca: trustme.CA
    ca_file: str
    server_context: ssl.SSLContext


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1 (trustme), the CA written where the client reads it."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Certificates(ca, str(path), server_context)


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServerFixture]]:
    """smtp_server(tls="none"|"starttls"|"tls", certificates=…): a running server, stopped after the test."""
    started: list[Controller] = []

    def start(
        tls: str = "none", certificates: Certificates | None = None, port: int | None = None
    ) -> SmtpServerFixture:
        mailbox = Mailbox()
        port = port or free_port()
        kwargs: dict[str, Any] = {}
        if tls == "starttls":
            assert certificates is not None
            kwargs = {
                "tls_context": certificates.server_context,
                "require_starttls": True,
                "authenticator": _authenticator,
                "auth_require_tls": True,
            }
        elif tls == "tls":
            assert certificates is not None
            # aiosmtpd does not count implicit TLS as TLS for AUTH (it looks for a STARTTLS upgrade), so it would
            # not offer AUTH at all: the connection is TLS from the first byte, so AUTH is allowed outright.
            kwargs = {
                "ssl_context": certificates.server_context,
                "authenticator": _authenticator,
                "auth_require_tls": False,
            }
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return SmtpServerFixture(mailbox, port, controller, certificates.ca_file if certificates else None)

    yield start
    for controller in started:
        with contextlib.suppress(AssertionError):  # stopped by the test already
            controller.stop()


@dataclass
class GatewayRequest:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass
class SmsGateway:
    """A loopback HTTP server standing in for a hospital's SMS gateway: records requests, answers `status`."""

    url: str
    requests: list[GatewayRequest] = field(default_factory=list)
    status: int = 202


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    gateway = SmsGateway(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            gateway.requests.append(GatewayRequest(dict(self.headers.items()), self.rfile.read(length)))
            self.send_response(gateway.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    yield gateway
    server.shutdown()
    server.server_close()


class SenderClock:
    """The sender's now (service.messaging.sending.now_utc), fixed until moved."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def set(self, when: datetime) -> None:
        self.now = when


@pytest.fixture
def sender_clock(monkeypatch: pytest.MonkeyPatch) -> SenderClock:
    clock = SenderClock(NOON)
    monkeypatch.setattr(sending, "now_utc", lambda: clock.now)
    return clock


def channel_settings(
    base: Settings, *, smtp: SmtpServerFixture | None = None, gateway: SmsGateway | None = None, **extra: Any
) -> Settings:
    """The test app's settings with the channels pointed at the local servers (loopback allowed, plain http)."""
    values: dict[str, Any] = {"sync_allowed_hosts": ["127.0.0.1"], "sync_require_https": False}
    if smtp is not None:
        values |= {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_tls": "none",
            "smtp_from": "care-team@hospital.example.org",
            "smtp_timeout_seconds": 10.0,
        }
    if gateway is not None:
        values |= {"sms_webhook_url": gateway.url, "sms_webhook_secret": SMS_SECRET}
    return Settings.model_validate({**base.model_dump(), **values, **extra})


def run_sender(engine: Engine, settings: Settings, tenant_id: str) -> MessageStats:
    """One sweep's messaging step, for this test's tenant only (other tests' rows share the database)."""
    return MessageSender(engine, settings, tenant_id=tenant_id).run()


@dataclass(frozen=True)
class Invited:
    patient_id: str
    invitation_id: str
    link: str
    expires_at: datetime
    address: str


def invite(
    engine: Engine,
    settings: Settings,
    api: ApiDriver,
    tenant_id: str,
    *,
    telecom: list[dict[str, Any]] | None = None,
    channel: str = "preferred",
    now: datetime = NOON,
    time_zone: str | None = None,
    **patient: Any,
) -> Invited:
    """A patient (named Rivera, unless told) with these contact points, sent a PHQ-9 invitation at `now`."""
    address = f"pat-{uuid.uuid4().hex[:8]}@example.org"
    if telecom is None:
        telecom = [{"system": "email", "value": address, "rank": 1}]
    extra = {"time_zone": time_zone} if time_zone else {}
    patient_id = api.patient(family_name="Rivera", given_name="Sam", telecom=telecom, **extra, **patient)
    with unit_of_work(engine) as session:
        ctx = invitations.system_context(tenant_id, settings, str(uuid.uuid4()))
        sent = invitations.send_invitation(
            session,
            ctx,
            patient_id,
            "phq-9",
            now.date(),
            channel,  # type: ignore[arg-type]
            now=now,
        )
        link = sent.link(settings.public_base_url)
        invitation_id, expires_at = sent.invitation.id, sent.invitation.expires_at
    return Invited(patient_id, invitation_id, link, expires_at, address)


def today(now: datetime = NOON) -> date:
    return now.date()


def after(when: datetime, **delta: float) -> datetime:
    return when + timedelta(**delta)


def ca_path(certificates: Certificates) -> Path:
    return Path(certificates.ca_file)
