"""Issue #22, the invitation interface (service/self_report/invitations.py) the delivery channels call: a
single-use, expiring token stored only as its hash, an `invitation` message in the patient-message outbox with ids
and dates only, the link for a channel while the invitation is open, cancelling and expiry. On SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.db.unit_of_work import unit_of_work
from service.errors import InvalidRequest, RecordConflict, RecordNotFound
from service.records.audit import AuditEvent
from service.self_report import invitations
from service.self_report.tables import Invitation, InvitationMessage
from service.settings import Settings
from tests.builders import ApiDriver

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _send(
    engine: Engine, settings: Settings, tenant: str, patient_id: str, **extra: object
) -> invitations.SentInvitation:
    options: dict[str, object] = {"instrument": "phq-9", "due_date": NOW.date(), "channel": "email", **extra}
    with unit_of_work(engine) as session:
        ctx = invitations.system_context(tenant, settings, str(uuid.uuid4()))
        sent = invitations.send_invitation(
            session,
            ctx,
            patient_id,
            str(options["instrument"]),
            options["due_date"],  # type: ignore[arg-type]
            options["channel"],  # type: ignore[arg-type]
            now=NOW,
        )
        session.expunge(sent.invitation)
    return sent


def test_the_token_is_stored_only_as_its_hash_and_the_message_carries_no_clinical_content(
    web_engine: Engine, web_settings: Settings, api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    patient_id = api_as(tenant).patient()
    sent = _send(web_engine, web_settings, tenant, patient_id)
    assert len(sent.token) == invitations.TOKEN_LENGTH and invitations.well_formed(sent.token)
    assert sent.link("https://tandem.example.org/") == f"https://tandem.example.org/r/{sent.token}"
    with Session(web_engine) as session:
        row = session.get(Invitation, sent.invitation.id)
        assert row is not None
        assert row.token_hash == hashlib.sha256(sent.token.encode()).hexdigest()
        assert sent.token not in repr(row.model_dump())  # neither in the clear nor in the sealed value
        assert (row.status, row.instrument, row.due_date, row.sent_by) == ("sent", "phq-9", NOW.date(), "schedule")
        # The link lasts a week from the end of the due day (the tenant's zone is UTC).
        assert row.expires_at == datetime(2026, 12, 12, 0, 0, tzinfo=UTC)
        messages = session.exec(select(InvitationMessage).where(col(InvitationMessage.invitation_id) == row.id)).all()
        assert [(m.kind, m.status, m.channel) for m in messages] == [("invitation", "pending", "email")]
        assert messages[0].payload == {
            "invitation_id": row.id,
            "patient_id": patient_id,
            "instrument": "phq-9",
            "expires_at": row.expires_at.isoformat(),
        }
        audit = session.exec(select(AuditEvent).where(col(AuditEvent.record_id) == row.id)).all()
        assert [(a.action, a.record_kind, a.actor, a.outcome) for a in audit] == [
            ("create", "self-report-invitations", "schedule", "success")
        ]
        # A channel gets the link while the invitation is open.
        link = invitations.invitation_link(session, web_settings, row.id, now=NOW)
        assert link == sent.link(web_settings.public_base_url)
        assert invitations.invitation_link(session, web_settings, row.id, now=row.expires_at) is None


def test_two_invitations_have_different_tokens_and_none_sends_no_message(
    web_engine: Engine, web_settings: Settings, api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    patient_id = api_as(tenant).patient()
    first = _send(web_engine, web_settings, tenant, patient_id, channel="none")
    second = _send(web_engine, web_settings, tenant, patient_id, channel="none")
    assert first.token != second.token
    with Session(web_engine) as session:
        assert not session.exec(
            select(InvitationMessage).where(
                col(InvitationMessage.invitation_id).in_([first.invitation.id, second.invitation.id])
            )
        ).all()


def test_refusals_change_nothing(
    web_engine: Engine,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    new_tenant: Callable[[], str],
) -> None:
    patient_id = api_as(tenant).patient()
    with pytest.raises(InvalidRequest, match="cannot be sent to a patient"):
        _send(web_engine, web_settings, tenant, patient_id, instrument="madrs")
    with pytest.raises(RecordNotFound):  # another hospital's patient looks like no patient
        _send(web_engine, web_settings, new_tenant(), patient_id)
    with Session(web_engine) as session:
        assert not session.exec(select(Invitation).where(col(Invitation.patient_id) == patient_id)).all()


def test_cancel_and_expiry_end_the_link_and_its_pending_messages(
    web_engine: Engine, web_settings: Settings, api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    patient_id = api_as(tenant).patient()
    cancelled = _send(web_engine, web_settings, tenant, patient_id)
    expiring = _send(web_engine, web_settings, tenant, patient_id, due_date=date(2026, 12, 1))
    with unit_of_work(web_engine) as session:
        ctx = invitations.system_context(tenant, web_settings, "test")
        done = invitations.cancel_invitation(session, ctx, patient_id, cancelled.invitation.id, now=NOW)
        assert done.status == "cancelled"
    with unit_of_work(web_engine) as session, pytest.raises(RecordConflict, match="cancelled"):
        invitations.cancel_invitation(
            session, invitations.system_context(tenant, web_settings, "t"), patient_id, cancelled.invitation.id, now=NOW
        )
    later = expiring.invitation.expires_at + timedelta(seconds=1)
    with unit_of_work(web_engine) as session:
        assert invitations.expire_invitations(session, later) >= 1
    with Session(web_engine) as session:
        for sent, status in ((cancelled, "cancelled"), (expiring, "expired")):
            row = session.get(Invitation, sent.invitation.id)
            assert row is not None and (row.status, row.sealed_token) == (status, None)
            assert invitations.invitation_link(session, web_settings, row.id, now=NOW) is None
            messages = session.exec(
                select(InvitationMessage.status).where(col(InvitationMessage.invitation_id) == row.id)
            ).all()
            assert list(messages) == ["cancelled"]
