"""Self-report invitations (issue #22): a questionnaire asked of a patient through a single-use, expiring link.

The interface the delivery channels (e-mail, SMS webhook) use, all taking the caller's session and never
committing:

- `send_invitation(session, ctx, patient_id, instrument, due_date, channel, *, now) -> SentInvitation`: a new
  invitation with an unguessable token (`secrets.token_urlsafe(32)`, 256 random bits), of which only the sha256 is
  stored; `SentInvitation.link(base_url)` is the patient's link (`<base>/r/<token>`), known to the caller once.
  Unless the channel is "none" (staff hand the link over), it writes one `InvitationMessage` of kind
  "invitation" (table self_report_messages) in the same transaction: the request for a channel to deliver it.
  Its payload is `{"invitation_id", "patient_id", "instrument", "expires_at"}` (ISO 8601) and nothing clinical.
- `invitation_link(session, settings, invitation_id, *, now) -> str | None`: the link, for a channel building a
  message or a reminder; None once the invitation has ended (answered, cancelled, expired): send nothing then.
- `current_status(invitation, now)`: sent, opened, partially_answered, completed, expired or cancelled.
- `cancel_invitation(...)`, `list_invitations(...)`, `expire_invitations(session, now)` (the sweep).

Statuses move forward only: sent -> opened -> partially_answered -> completed; any open one -> cancelled or
expired. Creating, opening, answering and cancelling are audited (record kind `self-report-invitations`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal, cast, get_args
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.auth.principal import Principal, Role
from service.break_glass.access import ensure_visible
from service.errors import NotConfigured, RecordConflict, RecordNotFound, invalid
from service.records.audit import AuditEvent
from service.records.base import new_id
from service.records.patient import Patient
from service.records.tenant import Tenant
from service.self_report.tables import Invitation, InvitationMessage, SelfReportSettings
from service.settings import Settings

INVITATION_KIND = "self-report-invitations"
InvitationStatus = Literal["sent", "opened", "partially_answered", "completed", "expired", "cancelled"]
STATUSES: tuple[str, ...] = get_args(InvitationStatus)
OPEN_STATUSES = ("sent", "opened", "partially_answered")
# "preferred": the patient's preferred channel, as the delivery channel reads it from their contact details;
# "none": no message is sent (the care team gives the link in person or by phone).
Channel = Literal["preferred", "email", "sms", "none"]
CHANNELS: tuple[str, ...] = get_args(Channel)
# What a patient can answer alone: the self-rated instruments whose wording Tandem may ship. Clinician-rated
# (MADRS, CADSS, MOAA/S) and licensed ones (BDI-II, HAM-D) are never sent, nor QIDS-SR16, of which Tandem ships
# only item headings, not the published wording of its questions and answers.
SELF_REPORT_INSTRUMENTS = ("phq-9", "phq-2", "gad-7", "c-ssrs-screener")
# US default (988 Suicide & Crisis Lifeline, https://988lifeline.org): a hospital sets its own words.
DEFAULT_CRISIS_TEXT = (
    "If you are thinking about suicide or hurting yourself, you can get help now: call or text 988 "
    "(988 Suicide & Crisis Lifeline, free, 24 hours a day). If you are in danger right now, call 911."
)
DEFAULT_LINK_VALID_DAYS = 7
TOKEN_BYTES = 32
# token_urlsafe(32) is 43 characters of [A-Za-z0-9_-]; anything else is refused before the database is asked.
TOKEN_LENGTH = 43
SCHEDULE_SENDER = "schedule"
# The audit trail's actor_role is text: these callers hold no token, so they are never authorised by role; they
# reach the store only through this package (the patient answering through their link, the schedule sending).
PATIENT_ROLE = cast(Role, "patient")
SYSTEM_ROLE = cast(Role, "system")


def hash_token(token: str) -> str:
    """sha256 of the token, hex. A plain hash (no salt, no slow KDF) is enough here: the token is 256 random bits,
    not a password, so it cannot be guessed or looked up in a table, and a fast hash lets the link be found by an
    index lookup. A database read alone never yields a usable link."""
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    return len(token) == TOKEN_LENGTH and all(c.isalnum() or c in "-_" for c in token) and token.isascii()


@dataclass(frozen=True)
class SentInvitation:
    """A new invitation and its token, which exists in the clear only here (and sealed for the channels)."""

    invitation: Invitation
    token: str

    def link(self, base_url: str) -> str:
        return link_for(base_url, self.token)


def link_for(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/r/{token}"


class InvitationRequest(BaseModel):
    """POST /api/v1/patients/{id}/invitations."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instrument": "phq-9", "channel": "preferred"}]},
    )

    instrument: str = Field(max_length=32, description=f"One of {', '.join(SELF_REPORT_INSTRUMENTS)}")
    due_date: date | None = Field(default=None, description="The day it is due; today (hospital's zone) if left out")
    channel: Channel = Field(
        default="preferred",
        description="How the link reaches the patient: their preferred channel, e-mail, SMS, or none (the care "
        "team gives it; the link is in this answer only)",
    )
    enrollment_id: str | None = Field(default=None, max_length=36)


class InvitationPublic(BaseModel):
    id: str
    patient_id: str
    enrollment_id: str | None
    instrument: str
    due_date: date
    channel: str
    status: InvitationStatus
    sent_by: str
    created_at: datetime
    expires_at: datetime
    opened_at: datetime | None
    completed_at: datetime | None
    response_id: str | None = Field(description="The QuestionnaireResponse written from the answers")


class InvitationCreated(InvitationPublic):
    link: str = Field(description="The patient's link; shown once, never stored in the clear")


class PatientInvitations(BaseModel):
    patient_id: str
    invitations: list[InvitationPublic] = Field(description="Newest first")


# ---- settings ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HospitalSettings:
    crisis_text: str
    staff_will_call: bool
    link_valid_days: int


def hospital_settings(session: Session, tenant_id: str) -> HospitalSettings:
    row = session.get(SelfReportSettings, tenant_id)
    if row is None:
        return HospitalSettings(DEFAULT_CRISIS_TEXT, False, DEFAULT_LINK_VALID_DAYS)
    return HospitalSettings(row.crisis_text or DEFAULT_CRISIS_TEXT, row.staff_will_call, row.link_valid_days)


# ---- sending ----------------------------------------------------------------------------------------------------


def system_context(tenant_id: str, settings: Settings, request_id: str) -> RequestContext:
    """The measurement schedule as a caller: audited as `schedule` (role system); sees every patient."""
    principal = Principal(subject=SCHEDULE_SENDER, tenant_id=tenant_id, role=SYSTEM_ROLE, scopes=None)
    return RequestContext(principal=principal, request_id=request_id, settings=settings, hidden_patients=frozenset())


def send_invitation(
    session: Session,
    ctx: RequestContext,
    patient_id: str,
    instrument: str,
    due_date: date,
    channel: Channel,
    *,
    now: datetime,
    enrollment_id: str | None = None,
) -> SentInvitation:
    """A new invitation for the patient to answer `instrument`, due on `due_date`; audited, not committed.

    The link lasts the hospital's `link_valid_days` (default 7) from the end of the due day or from now,
    whichever is later. Another hospital's patient is a 404; a restricted patient needs break-the-glass."""
    ctx.intent = AuditIntent("create", INVITATION_KIND, patient_id=patient_id)
    if instrument not in SELF_REPORT_INSTRUMENTS:
        raise invalid("instrument", f"{instrument!r} cannot be sent to a patient; one of {SELF_REPORT_INSTRUMENTS}")
    if channel not in CHANNELS:
        raise invalid("channel", f"{channel!r} is not a channel; one of {CHANNELS}")
    patient = _patient(session, ctx.tenant_id, patient_id)
    ensure_visible(session, ctx, patient_id)
    if patient.deceased:
        raise RecordConflict("the patient has died: no questionnaire is sent")
    days = hospital_settings(session, ctx.tenant_id).link_valid_days
    expires_at = max(now, _end_of_day(session, ctx.tenant_id, due_date)) + timedelta(days=days)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = Invitation(
        tenant_id=ctx.tenant_id,
        patient_id=patient_id,
        enrollment_id=enrollment_id,
        instrument=instrument,
        due_date=due_date,
        channel=channel,
        language=_language(patient),
        token_hash=hash_token(token),
        sealed_token=_seal(ctx.settings, invitation_hash=hash_token(token), token=token),
        status="sent",
        sent_by=ctx.principal.subject,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    session.add(invitation)
    session.flush()
    if channel != "none":
        session.add(
            InvitationMessage(
                tenant_id=ctx.tenant_id,
                kind="invitation",
                invitation_id=invitation.id,
                patient_id=patient_id,
                channel=channel,
                payload=message_payload(invitation),
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    ctx.intent.record_id = invitation.id
    record_success(session, ctx, status_code=201, patient_ids=[patient_id])
    return SentInvitation(invitation, token)


def message_payload(invitation: Invitation) -> dict[str, str]:
    return {
        "invitation_id": invitation.id,
        "patient_id": invitation.patient_id,
        "instrument": invitation.instrument,
        "expires_at": invitation.expires_at.isoformat(),
    }


def _patient(session: Session, tenant_id: str, patient_id: str) -> Patient:
    patient = session.exec(
        select(Patient).where(col(Patient.tenant_id) == tenant_id, col(Patient.id) == patient_id)
    ).first()
    if patient is None:
        raise RecordNotFound("patient", patient_id)
    return patient


def _end_of_day(session: Session, tenant_id: str, day: date) -> datetime:
    tenant = session.get(Tenant, tenant_id)
    zone = ZoneInfo(tenant.time_zone if tenant is not None else "UTC")
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def _language(patient: Patient) -> str:
    """The patient's preferred language where a translation ships (only English today: service/self_report/text)."""
    for entry in patient.communication or []:
        codings = ((entry.get("language") or {}).get("coding")) or []
        for coding in codings:
            code = str(coding.get("code") or "")[:16]
            if code:
                return code
    return "en"


# ---- the sealed token, for the channels -------------------------------------------------------------------------


def _sealer(settings: Settings) -> MultiFernet:
    keys = list(settings.target_credential_keys)
    if not keys:
        if settings.environment == "production":
            raise NotConfigured(
                "TANDEM_TARGET_CREDENTIAL_KEYS is not set, so invitation links cannot be sealed for delivery: set "
                "it (`tandem keys credential-key` prints a key)"
            )
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tandem self-report links").derive(
            settings.dev_token_secret.encode()
        )
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key) for key in reversed(keys)])


def _seal(settings: Settings, *, invitation_hash: str, token: str) -> str:
    # Bound to its hash: a sealed value copied onto another invitation's row opens to nothing.
    return _sealer(settings).encrypt(json.dumps({"h": invitation_hash, "t": token}).encode()).decode()


def invitation_link(session: Session, settings: Settings, invitation_id: str, *, now: datetime) -> str | None:
    """The link of an open invitation, for a delivery channel's message or reminder; None once it has ended."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or current_status(invitation, now) not in OPEN_STATUSES or not invitation.sealed_token:
        return None
    try:
        opened = json.loads(_sealer(settings).decrypt(invitation.sealed_token.encode()))
    except (InvalidToken, ValueError):
        return None
    if opened.get("h") != invitation.token_hash or hash_token(str(opened.get("t"))) != invitation.token_hash:
        return None
    return link_for(settings.public_base_url, str(opened["t"]))


# ---- reading and ending -----------------------------------------------------------------------------------------


def current_status(invitation: Invitation, now: datetime) -> InvitationStatus:
    if invitation.status in OPEN_STATUSES and now >= invitation.expires_at:
        return "expired"
    return cast(InvitationStatus, invitation.status)


def public(invitation: Invitation, now: datetime) -> InvitationPublic:
    return InvitationPublic(
        id=invitation.id,
        patient_id=invitation.patient_id,
        enrollment_id=invitation.enrollment_id,
        instrument=invitation.instrument,
        due_date=invitation.due_date,
        channel=invitation.channel,
        status=current_status(invitation, now),
        sent_by=invitation.sent_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        opened_at=invitation.opened_at,
        completed_at=invitation.completed_at,
        response_id=invitation.response_id,
    )


def created(sent: SentInvitation, settings: Settings, now: datetime) -> InvitationCreated:
    return InvitationCreated(**public(sent.invitation, now).model_dump(), link=sent.link(settings.public_base_url))


def patient_invitations(session: Session, tenant_id: str, patient_id: str) -> list[Invitation]:
    """Newest first; no audit row (the caller's read of the patient covers it)."""
    return list(
        session.exec(
            select(Invitation)
            .where(col(Invitation.tenant_id) == tenant_id, col(Invitation.patient_id) == patient_id)
            .order_by(col(Invitation.created_at).desc(), col(Invitation.id))
        ).all()
    )


def list_invitations(session: Session, ctx: RequestContext, patient_id: str, *, now: datetime) -> PatientInvitations:
    ctx.intent = AuditIntent("list", INVITATION_KIND, patient_id=patient_id)
    _patient(session, ctx.tenant_id, patient_id)
    ensure_visible(session, ctx, patient_id)
    rows = patient_invitations(session, ctx.tenant_id, patient_id)
    record_success(session, ctx, status_code=200)
    return PatientInvitations(patient_id=patient_id, invitations=[public(row, now) for row in rows])


def cancel_invitation(
    session: Session, ctx: RequestContext, patient_id: str, invitation_id: str, *, now: datetime
) -> InvitationPublic:
    """End an open invitation: its link stops working and its pending messages are not sent."""
    ctx.intent = AuditIntent("update", INVITATION_KIND, record_id=invitation_id, patient_id=patient_id)
    _patient(session, ctx.tenant_id, patient_id)
    ensure_visible(session, ctx, patient_id)
    invitation = session.exec(
        select(Invitation).where(
            col(Invitation.tenant_id) == ctx.tenant_id,
            col(Invitation.patient_id) == patient_id,
            col(Invitation.id) == invitation_id,
        )
    ).first()
    if invitation is None:
        raise RecordNotFound("invitation", invitation_id)
    status = current_status(invitation, now)
    if status not in OPEN_STATUSES:
        raise RecordConflict(f"the invitation is {status.replace('_', ' ')}: only an open one can be cancelled")
    _end(session, invitation, "cancelled", now)
    record_success(session, ctx, status_code=200, patient_ids=[patient_id])
    return public(invitation, now)


def _end(session: Session, invitation: Invitation, status: InvitationStatus, now: datetime) -> None:
    invitation.status = status
    invitation.ended_at = now
    invitation.updated_at = now
    invitation.sealed_token = None
    if status != "completed":
        invitation.answers = []  # nothing answered stays behind a link that no longer works
    session.add(invitation)
    cancel_pending_messages(session, [invitation.id], now)


def cancel_pending_messages(session: Session, invitation_ids: list[str], now: datetime) -> None:
    if invitation_ids:
        session.execute(
            update(InvitationMessage)
            .where(
                col(InvitationMessage.invitation_id).in_(invitation_ids),
                col(InvitationMessage.status).in_(("pending", "failed")),
            )
            .values(status="cancelled", updated_at=now)
        )


def expire_invitations(session: Session, now: datetime) -> int:
    """Mark open invitations past their expiry as expired (their answers and sealed tokens dropped, their
    pending messages cancelled), each with an audit row; returns how many. Part of the caller's transaction."""
    rows = session.exec(
        select(Invitation).where(col(Invitation.status).in_(OPEN_STATUSES), col(Invitation.expires_at) <= now)
    ).all()
    for invitation in rows:
        _end(session, invitation, "expired", invitation.expires_at)
    if rows:
        session.execute(insert(AuditEvent), [_system_audit_row(i, "update", 200, "expiry", now) for i in rows])
    return len(rows)


def _system_audit_row(
    invitation: Invitation, action: str, status_code: int, request_id: str, now: datetime
) -> dict[str, object]:
    return {
        "id": new_id(),
        "occurred_at": now,
        "tenant_id": invitation.tenant_id,
        "actor": SCHEDULE_SENDER,
        "actor_role": SYSTEM_ROLE,
        "action": action,
        "record_kind": INVITATION_KIND,
        "record_id": invitation.id,
        "patient_id": invitation.patient_id,
        "outcome": "success" if status_code < 400 else "failure",
        "status_code": status_code,
        "request_id": request_id,
        "purpose": None,
    }


def latest_requests(session: Session, tenant_id: str, patient_ids: list[str], now: datetime) -> dict[str, str]:
    """patient id -> what became of the latest questionnaire sent ("sent": open, not completed; "expired": it
    ran out unanswered; "completed"; "cancelled"), for the caseload's "next due"; patients sent none are absent."""
    if not patient_ids:
        return {}
    rows = session.exec(
        select(Invitation)
        .where(col(Invitation.tenant_id) == tenant_id, col(Invitation.patient_id).in_(patient_ids))
        .order_by(col(Invitation.created_at))
    ).all()
    latest: dict[str, str] = {}
    for row in rows:
        status = current_status(row, now)
        latest[row.patient_id] = "sent" if status in OPEN_STATUSES else status
    return latest


def set_hospital_settings(
    session: Session,
    tenant_id: str,
    *,
    crisis_text: str | None = None,
    staff_will_call: bool | None = None,
    link_valid_days: int | None = None,
    now: datetime,
) -> HospitalSettings:
    """Change a hospital's self-report settings (`tandem tenant self-report`); what is not given stays."""
    if session.get(Tenant, tenant_id) is None:
        raise RecordNotFound("tenant", tenant_id)
    if crisis_text is not None and not (1 <= len(crisis_text.strip()) <= 2000):
        raise invalid("crisis_text", "must be 1 to 2,000 characters")
    if link_valid_days is not None and not (1 <= link_valid_days <= 60):
        raise invalid("link_valid_days", "must be 1 to 60 days")
    row = session.get(SelfReportSettings, tenant_id) or SelfReportSettings(tenant_id=tenant_id)
    if crisis_text is not None:
        row.crisis_text = crisis_text.strip()
    if staff_will_call is not None:
        row.staff_will_call = staff_will_call
    if link_valid_days is not None:
        row.link_valid_days = link_valid_days
    row.updated_at = now
    session.add(row)
    session.flush()
    return hospital_settings(session, tenant_id)
