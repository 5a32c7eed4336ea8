"""Closing grants whose time is up, with an audited end — lazily on the next access and by the sweep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, update
from sqlmodel import Session, col, select

from service.break_glass.tables import BreakGlassGrant
from service.db.unit_of_work import unit_of_work
from service.records.audit import AuditEvent
from service.records.base import new_id

AUDIT_KIND = "break-glass"


def _end_audit_row(grant: BreakGlassGrant, *, at: datetime, request_id: str) -> dict[str, object]:
    return {
        "id": new_id(),
        "occurred_at": at,
        "tenant_id": grant.tenant_id,
        "actor": grant.subject,
        "actor_role": "clinician",
        "action": "update",
        "record_kind": AUDIT_KIND,
        "record_id": grant.id,
        "patient_id": grant.patient_id,
        "outcome": "success",
        "status_code": 200,
        "request_id": request_id,
        "purpose": "BTG",
    }


def close_expired_grants(
    session: Session, now: datetime, *, tenant_id: str | None = None, subject: str | None = None
) -> int:
    """End every open grant past its expiry (of one caller, or all), each with one audit row dated at its expiry.

    The conditional UPDATE decides who closes a grant, so two requests racing here audit its end once."""
    g = BreakGlassGrant
    query = select(g).where(col(g.ended_at).is_(None), col(g.expires_at) <= now)
    if tenant_id is not None:
        query = query.where(col(g.tenant_id) == tenant_id)
    if subject is not None:
        query = query.where(col(g.subject) == subject)
    closed = 0
    for grant in session.exec(query).all():
        result = session.execute(
            update(g)
            .where(col(g.id) == grant.id, col(g.ended_at).is_(None))
            .values(ended_at=grant.expires_at, end_reason="expired")
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            session.execute(insert(AuditEvent), [_end_audit_row(grant, at=grant.expires_at, request_id="expiry")])
            closed += 1
    return closed


def sweep_expired_grants(engine: Engine, now: datetime) -> int:
    with unit_of_work(engine) as session:
        return close_expired_grants(session, now)
