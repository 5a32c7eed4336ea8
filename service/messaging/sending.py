"""Sending what is due: claim (claims.py), decide from the invitation, the patient and the clock, send by the
chosen channel, settle. Run by the sweep (service/sweep.py, `tandem status sweep`); each step its own unit of work,
and no transaction is held open while a server is talked to.

Before every attempt: an invitation that ended (submitted, cancelled, expired) has no link any more
(self_report.invitations.invitation_link) and its messages are cancelled, so nothing is sent after submission; a
deceased patient gets nothing; a message due in the patient's quiet hours waits until they end (not counted as
an attempt); a patient with no address for a configured channel reads "cannot be sent: …" (status cannot_send,
shown on the sync page, never silent). A failure is retried with the outbox's backoff until
TANDEM_MESSAGE_MAX_ATTEMPTS, then the message is a dead letter with the last error kept. Once an invitation is
sent, its reminder is queued for TANDEM_MESSAGE_REMINDER_HOURS before the link expires (when that is still ahead).

The outbox row's `last_error` holds the words of what happened last (an error, or why it waits or was not sent);
`channel` becomes the channel used once sent.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from service.clock import now_utc
from service.db.unit_of_work import unit_of_work
from service.messaging.addressing import Channel, Destination, NoDestination, destination
from service.messaging.claims import claim, settle
from service.messaging.content import MessageText, email_message, message_text
from service.messaging.email_channel import send_email
from service.messaging.failure import SendFailure
from service.messaging.quiet_hours import parse_window, quiet_until
from service.messaging.sms_channel import send_sms
from service.records.patient import Patient
from service.records.tenant import Tenant
from service.self_report.invitations import invitation_link
from service.self_report.tables import Invitation, InvitationMessage
from service.settings import Settings
from service.sync.backoff import parse_retry_after, retry_delay
from service.sync.url_safety import Resolver, system_resolver

logger = logging.getLogger("tandem.messaging")
LEASE_SECONDS = 120
CLAIM_LIMIT = 50
NOTE_CHARS = 2000


@dataclass
class MessageStats:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0
    cancelled: int = 0
    cannot_send: int = 0

    def add(self, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)


@dataclass(frozen=True)
class Stop:
    status: str  # cancelled | cannot_send
    reason: str


@dataclass(frozen=True)
class Defer:
    until: datetime
    reason: str


@dataclass(frozen=True)
class Send:
    destination: Destination
    text: MessageText
    expires_at: datetime


def configured_channels(settings: Settings) -> list[Channel]:
    channels: list[Channel] = []
    if settings.smtp_host and settings.smtp_from:
        channels.append("email")
    if settings.sms_webhook_url and settings.sms_webhook_secret:
        channels.append("sms")
    return channels


def quiet_window(settings: Settings, tenant_id: str) -> str:
    return settings.message_quiet_hours_by_tenant.get(tenant_id, settings.message_quiet_hours)


def correlation_id(row: InvitationMessage) -> str:
    return f"self-report-message-{row.id}"


def decide(session: Session, row: InvitationMessage, settings: Settings, now: datetime) -> Stop | Defer | Send:
    """What to do with a claimed message now (reads only)."""
    invitation = session.get(Invitation, row.invitation_id)
    if invitation is None or invitation.tenant_id != row.tenant_id:
        return Stop("cancelled", "not sent: the invitation no longer exists")
    link = invitation_link(session, settings, invitation.id, now=now)
    if link is None:
        return Stop("cancelled", "not sent: the questionnaire was answered, cancelled or expired first")
    patient = session.get(Patient, row.patient_id)
    if patient is None or patient.tenant_id != row.tenant_id:
        return Stop("cancelled", "not sent: the patient no longer exists")
    if patient.deceased:
        return Stop("cancelled", "not sent: the patient has died")
    tenant = session.get(Tenant, row.tenant_id)
    zone = patient.time_zone or (tenant.time_zone if tenant else "UTC")
    until = quiet_until(now, zone, parse_window(quiet_window(settings, row.tenant_id)))
    if until is not None:
        if until >= invitation.expires_at:
            return Stop("cancelled", f"not sent: quiet hours in {zone} last until after the link expires")
        return Defer(until, f"waiting for the end of quiet hours in {zone}")
    found = destination(patient.telecom, requested=row.channel, configured=configured_channels(settings))
    if isinstance(found, NoDestination):
        return Stop("cannot_send", found.reason)
    text = message_text(row.kind, link=link, expires_at=invitation.expires_at, zone=zone)
    return Send(found, text, invitation.expires_at)


def deliver(settings: Settings, http: httpx.Client, row: InvitationMessage, send: Send, resolve: Resolver) -> str:
    """One attempt by the chosen channel; raises SendFailure."""
    if send.destination.channel == "email":
        assert settings.smtp_from is not None
        message = email_message(
            send.text, sender=settings.smtp_from, to=send.destination.address, correlation_id=correlation_id(row)
        )
        return send_email(settings, message)
    return send_sms(
        settings,
        http,
        to=send.destination.address,
        body=send.text.sms,
        correlation_id=correlation_id(row),
        resolve=resolve,
    )


@dataclass
class MessageSender:
    engine: Engine
    settings: Settings
    sender_id: str = "sweep"
    tenant_id: str | None = None  # only this tenant's messages (a per-tenant sender; the sweep sends all)
    resolve: Resolver = system_resolver
    rng: random.Random = field(default_factory=random.Random)
    stats: MessageStats = field(default_factory=MessageStats)

    def run(self, *, limit: int = CLAIM_LIMIT) -> MessageStats:
        """Everything due now, a claim at a time, until nothing is due."""
        with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False, trust_env=False) as http:
            while rows := claim(
                self.engine,
                self.sender_id,
                now=now_utc(),
                limit=limit,
                lease_seconds=LEASE_SECONDS,
                tenant_id=self.tenant_id,
            ):
                for row in rows:
                    self.process(http, row)
        return self.stats

    def process(self, http: httpx.Client, row: InvitationMessage) -> str:
        now = now_utc()
        try:
            with Session(self.engine, expire_on_commit=False) as session:  # reads only
                decision = decide(session, row, self.settings, now)
        except Exception:  # a bad row must not stop the others: it is tried again with backoff
            logger.exception("deciding on patient message %s failed", row.id)
            return self._failed(row, SendFailure("could not prepare the message (see the logs)", retryable=True))
        if isinstance(decision, Stop):
            return self._settle(row, decision.status, {"status": decision.status, "last_error": decision.reason})
        if isinstance(decision, Defer):
            values = {"status": "pending", "next_attempt_at": decision.until, "last_error": decision.reason}
            return self._settle(row, "deferred", values)
        try:
            note = deliver(self.settings, http, row, decision, self.resolve)
        except SendFailure as failure:
            return self._failed(row, failure, channel=decision.destination.channel)
        except Exception:
            logger.exception("sending patient message %s failed unexpectedly", row.id)
            return self._failed(row, SendFailure("unexpected error (see the logs)", retryable=True))
        logger.info("patient message %s: %s", row.id, note)  # no address, no text: PHI never goes into logs
        sent_at = now_utc()
        values = {
            "status": "sent",
            "channel": decision.destination.channel,
            "attempts": row.attempts + 1,
            "last_error": None,
            "delivered_at": sent_at,
        }
        return self._settle(row, "sent", values, reminder_for=decision.expires_at)

    def _failed(self, row: InvitationMessage, failure: SendFailure, channel: Channel | None = None) -> str:
        attempt = row.attempts + 1
        dead = not failure.retryable or attempt >= self.settings.message_max_attempts
        note = failure.message
        if failure.retryable and dead:
            note = f"gave up after {attempt} attempts: {failure.message}"
        delay = retry_delay(attempt, retry_after=parse_retry_after(failure.retry_after), rng=self.rng)
        values: dict[str, object] = {
            "status": "dead" if dead else "failed",
            "attempts": attempt,
            "last_error": note[:NOTE_CHARS],
            "next_attempt_at": now_utc() + timedelta(seconds=delay),
        }
        if channel is not None:
            values["channel"] = channel
        return self._settle(row, "dead" if dead else "failed", values)

    def _settle(
        self, row: InvitationMessage, outcome: str, values: dict[str, object], reminder_for: datetime | None = None
    ) -> str:
        values.setdefault("updated_at", now_utc())
        with unit_of_work(self.engine) as session:
            if settle(session, row, self.sender_id, values) and reminder_for is not None and row.kind == "invitation":
                self._queue_reminder(session, row, reminder_for)
        self.stats.add(outcome)
        return outcome

    def _queue_reminder(self, session: Session, row: InvitationMessage, expires_at: datetime) -> None:
        hours = self.settings.message_reminder_hours
        due = expires_at - timedelta(hours=hours)
        now = now_utc()
        if hours == 0 or due <= now:
            return  # the link expires within the lead time already: the invitation just sent is the reminder
        session.add(
            InvitationMessage(
                tenant_id=row.tenant_id,
                kind="reminder",
                invitation_id=row.invitation_id,
                patient_id=row.patient_id,
                channel=row.channel,  # what the invitation asked for (preferred, email, sms), decided again then
                payload=dict(row.payload),
                next_attempt_at=due,
                created_at=now,
                updated_at=now,
            )
        )


def send_due_messages(engine: Engine, settings: Settings, *, resolve: Resolver = system_resolver) -> MessageStats:
    """Send every patient message due now (the sweep's step); returns what happened, counted."""
    return MessageSender(engine, settings, resolve=resolve).run()
