"""The measurement schedule, sent: a sweep step that invites each patient to answer the measurement their
protocol has due (baseline, before each infusion during induction, weekly during CBT, every 4 weeks in
maintenance: service/plan_status/schedule.py, read from the stored plan status), once per due date.

A measurement is sent from SEND_AHEAD before it is due (or from its earliest date, a pre-dose measurement's
window), and also when it is already overdue and nothing was sent for that date; never twice for one patient,
instrument and due date, and never while the patient has an open invitation for the instrument (one sent by
hand, say). Enrolments on hold, completed or discontinued get nothing; nor does a protocol whose primary
instrument a patient cannot answer alone. It also ends invitations past their expiry.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.caseload.tables import PlanStatusRow
from service.db.unit_of_work import unit_of_work
from service.records.tenant import Tenant
from service.self_report.invitations import (
    OPEN_STATUSES,
    SELF_REPORT_INSTRUMENTS,
    expire_invitations,
    send_invitation,
    system_context,
)
from service.self_report.tables import Invitation
from service.settings import Settings

SEND_AHEAD = timedelta(days=1)
_NOT_SENT_TO = ("completed", "discontinued", "on_hold")


def send_due_invitations(engine: Engine, settings: Settings, now: datetime) -> int:
    """Send the invitations the schedule has due and expire the old ones; one transaction per tenant. Returns
    how many were sent."""
    with unit_of_work(engine) as session:
        expire_invitations(session, now)
    with unit_of_work(engine) as session:
        tenants = [t for t in session.exec(select(Tenant.id)).all()]
    sent = 0
    for tenant_id in tenants:
        with unit_of_work(engine) as session:
            sent += _send_for_tenant(session, settings, tenant_id, now)
    return sent


def _send_for_tenant(session: Session, settings: Settings, tenant_id: str, now: datetime) -> int:
    tenant = session.get(Tenant, tenant_id)
    zone = ZoneInfo(tenant.time_zone if tenant is not None else "UTC")
    rows = session.exec(
        select(PlanStatusRow).where(
            col(PlanStatusRow.tenant_id) == tenant_id,
            col(PlanStatusRow.status).not_in(_NOT_SENT_TO),
            col(PlanStatusRow.primary_instrument).in_(SELF_REPORT_INSTRUMENTS),
        )
    ).all()
    due_now = []
    for row in rows:
        due = ((row.detail or {}).get("next_due") or {}).get("measurement")
        if not due or (row.detail or {}).get("enrollment_status") not in (None, "active"):
            continue
        due_at = datetime.fromisoformat(due["due_at"])
        opens_at = datetime.fromisoformat(due["earliest_at"]) if due.get("earliest_at") else due_at - SEND_AHEAD
        if now >= opens_at:
            due_now.append((row, due_at.astimezone(zone).date()))
    if not due_now:
        return 0
    existing = session.exec(
        select(Invitation).where(
            col(Invitation.tenant_id) == tenant_id,
            col(Invitation.patient_id).in_(sorted({row.patient_id for row, _ in due_now})),
        )
    ).all()
    asked = {(i.patient_id, i.instrument, i.due_date) for i in existing}
    waiting = {(i.patient_id, i.instrument) for i in existing if i.status in OPEN_STATUSES and i.expires_at > now}
    ctx = system_context(tenant_id, settings, f"schedule-{uuid.uuid4()}")
    sent = 0
    for row, due_date in due_now:
        key = (row.patient_id, row.primary_instrument)
        if (*key, due_date) in asked or key in waiting:
            continue
        send_invitation(session, ctx, row.patient_id, row.primary_instrument, due_date, "preferred", now=now,
                        enrollment_id=row.enrollment_id)  # fmt: skip
        asked.add((*key, due_date))
        waiting.add(key)
        sent += 1
    return sent
