"""Breaking the glass: a clinician states a reason and gets time-boxed access to one restricted patient.

Start and end are audit rows with purpose BTG (the reason stays on the grant, which admins review: audit rows
hold ids and codes only). A grant ends when its holder ends it or when its time is up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import ConfigDict, Field, field_validator
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.expiry import AUDIT_KIND, close_expired_grants
from service.break_glass.tables import BreakGlassGrant
from service.clock import now_utc
from service.errors import RecordConflict, RecordNotFound, invalid
from service.records.base import ApiModel
from service.records.patient import Patient


class BreakGlassRequest(ApiModel):
    reason: str = Field(
        max_length=1000,
        description="Why the clinician needs this restricted patient's record now (reviewed by the privacy officer)",
    )
    minutes: int | None = Field(
        default=None, ge=1, le=1440, description="How long the access lasts (default and maximum set by the service)"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reason": "Admitted unconscious to the emergency department; need the treatment history",
                    "minutes": 30,
                }
            ]
        }
    )

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required to break the glass")
        return value.strip()


class BreakGlassGrantPublic(ApiModel):
    id: str
    patient_id: str
    subject: str
    reason: str
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    active: bool


def _public(grant: BreakGlassGrant, now: datetime) -> BreakGlassGrantPublic:
    return BreakGlassGrantPublic(
        **grant.model_dump(exclude={"tenant_id"}),
        active=grant.ended_at is None and grant.expires_at > now,
    )


def require_restricted_patient(session: Session, ctx: RequestContext, patient_id: str) -> None:
    """404 for a patient not in the caller's tenant; 409 for one whose record is not restricted."""
    patient = session.exec(
        select(Patient).where(col(Patient.tenant_id) == ctx.tenant_id, col(Patient.id) == patient_id)
    ).first()
    if patient is None:
        raise RecordNotFound("patient", patient_id)
    if not patient.restricted:
        raise RecordConflict(f"patient {patient_id!r} is not restricted: their record is readable without this")


def start_break_glass(
    session: Session, ctx: RequestContext, patient_id: str, request: BreakGlassRequest
) -> BreakGlassGrantPublic:
    ctx.intent = AuditIntent("create", AUDIT_KIND, patient_id=patient_id, purpose="BTG")
    settings = ctx.settings
    minutes = request.minutes or settings.break_glass_default_minutes
    if minutes > settings.break_glass_max_minutes:
        raise invalid("minutes", f"at most {settings.break_glass_max_minutes} minutes; ask again when it ends")
    require_restricted_patient(session, ctx, patient_id)
    now = now_utc()
    grant = BreakGlassGrant(
        tenant_id=ctx.tenant_id,
        patient_id=patient_id,
        subject=ctx.principal.subject,
        reason=request.reason,
        started_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(grant)
    session.flush()
    ctx.intent.record_id = grant.id
    record_success(session, ctx, status_code=201)
    return _public(grant, now)


def end_break_glass(session: Session, ctx: RequestContext, grant_id: str) -> BreakGlassGrantPublic:
    """The holder ends the grant early; ending an ended one changes nothing. Others' grants read as missing."""
    ctx.intent = AuditIntent("update", AUDIT_KIND, record_id=grant_id, purpose="BTG")
    g = BreakGlassGrant
    grant = session.exec(
        select(g).where(
            col(g.tenant_id) == ctx.tenant_id, col(g.id) == grant_id, col(g.subject) == ctx.principal.subject
        )
    ).first()
    if grant is None:
        raise RecordNotFound("break-the-glass grant", grant_id)
    ctx.intent.patient_id = grant.patient_id
    now = now_utc()
    close_expired_grants(session, now, tenant_id=ctx.tenant_id, subject=ctx.principal.subject)
    session.refresh(grant)
    if grant.ended_at is None:
        grant.ended_at, grant.end_reason = now, "ended"
        session.add(grant)
        session.flush()
        record_success(session, ctx, status_code=200)
    return _public(grant, now)


def list_grants(session: Session, ctx: RequestContext, *, active_only: bool, limit: int) -> list[BreakGlassGrantPublic]:
    """Admins (the privacy officer) see the tenant's grants; a clinician sees their own. Newest first."""
    ctx.intent = AuditIntent("list", AUDIT_KIND, purpose="BTG")
    now = now_utc()
    close_expired_grants(session, now, tenant_id=ctx.tenant_id)
    g = BreakGlassGrant
    query = select(g).where(col(g.tenant_id) == ctx.tenant_id)
    if ctx.principal.role != "admin":
        query = query.where(col(g.subject) == ctx.principal.subject)
    if active_only:
        query = query.where(col(g.ended_at).is_(None), col(g.expires_at) > now)
    grants = list(session.exec(query.order_by(col(g.started_at).desc(), col(g.id)).limit(limit)))
    record_success(session, ctx, status_code=200, patient_ids=[grant.patient_id for grant in grants])
    return [_public(grant, now) for grant in grants]
