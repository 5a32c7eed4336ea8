"""Which restricted patients the caller may not see, worked out once per request.

A restricted patient (confidentiality R, set by the hospital) is hidden from every person — clinicians,
coordinators, admins — on every read path: direct reads answer 403 PatientRestricted (so a clinician knows to
break the glass), lists, searches and the caseload leave the patient out. The hospital's EHR system (role
ehr-system) owns the record and is not restricted. A clinician's open grant lifts the restriction for that
clinician and that patient until it ends; what is read under it is audited with purpose BTG.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from service.audit_trail import RequestContext
from service.auth.principal import Role
from service.break_glass.expiry import close_expired_grants
from service.break_glass.tables import BreakGlassGrant
from service.clock import now_utc
from service.errors import NotPermitted, PatientRestricted
from service.records.patient import Patient

UNRESTRICTED_ROLES: frozenset[Role] = frozenset({"ehr-system"})


def hidden_patients(session: Session, ctx: RequestContext) -> frozenset[str]:
    if ctx.hidden_patients is not None:
        return ctx.hidden_patients
    if ctx.principal.role in UNRESTRICTED_ROLES:
        ctx.hidden_patients = frozenset()
        return ctx.hidden_patients
    restricted = set(
        session.exec(select(Patient.id).where(col(Patient.tenant_id) == ctx.tenant_id, col(Patient.restricted)))
    )
    granted: set[str] = set()
    if restricted:
        now = now_utc()
        close_expired_grants(session, now, tenant_id=ctx.tenant_id, subject=ctx.principal.subject)
        g = BreakGlassGrant
        granted = set(
            session.exec(
                select(g.patient_id).where(
                    col(g.tenant_id) == ctx.tenant_id,
                    col(g.subject) == ctx.principal.subject,
                    col(g.ended_at).is_(None),
                    col(g.expires_at) > now,
                )
            )
        )
    ctx.break_glass_patients = frozenset(restricted & granted)
    ctx.hidden_patients = frozenset(restricted - granted)
    return ctx.hidden_patients


def ensure_visible(session: Session, ctx: RequestContext, patient_id: str | None) -> None:
    """Refuse (403, audited as a failed attempt on that patient) a restricted patient the caller may not see."""
    if patient_id is not None and patient_id in hidden_patients(session, ctx):
        if ctx.intent is not None:
            ctx.intent.patient_id = patient_id
        raise PatientRestricted(patient_id)


def visible(session: Session, ctx: RequestContext, patient_column: Any) -> Any | None:
    """A WHERE clause leaving out hidden patients' rows (rows about no patient stay), or None when none is hidden."""
    hidden = hidden_patients(session, ctx)
    if not hidden:
        return None
    return or_(col(patient_column).is_(None), col(patient_column).not_in(sorted(hidden)))


def check_restriction_change(ctx: RequestContext, was_restricted: bool, restricted: bool) -> None:
    """Anyone who may write a patient may restrict it; only the hospital's EHR may lift a restriction."""
    if was_restricted and not restricted and ctx.principal.role not in UNRESTRICTED_ROLES:
        raise NotPermitted("only the hospital's EHR system may lift a patient's restriction")
