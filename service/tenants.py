"""Registering tenants (hospitals or sites); the operator does this, not an API client."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import update
from sqlmodel import Session, col

from service.caseload.tables import PlanStatusRow
from service.clock import now_utc
from service.errors import RecordConflict, RecordNotFound, invalid
from service.records.tenant import Tenant

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def register_tenant(session: Session, *, tenant_id: str, name: str, time_zone: str = "UTC") -> Tenant:
    if not TENANT_ID.match(tenant_id):
        raise invalid("tenant_id", "use 1-63 lowercase letters, digits and hyphens, e.g. st-olav-oslo")
    if session.get(Tenant, tenant_id) is not None:
        raise RecordConflict(f"tenant {tenant_id!r} is already registered")
    tenant = Tenant(id=tenant_id, name=name, time_zone=checked_zone(time_zone))
    session.add(tenant)
    return tenant


def tenant_exists(session: Session, tenant_id: str) -> bool:
    return session.get(Tenant, tenant_id) is not None


def checked_zone(name: str) -> str:
    """An IANA zone name as given, or a refusal that says what to write."""
    try:
        if name in available_timezones():
            ZoneInfo(name)
            return name
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise invalid("time_zone", f"{name!r} is not an IANA time zone; use a name such as Europe/Oslo or America/Chicago")


def set_tenant_zone(session: Session, tenant_id: str, time_zone: str) -> Tenant:
    """Move a tenant to another zone; its stored statuses are due, so the sweep words them in the new zone."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise RecordNotFound("tenant", tenant_id)
    tenant.time_zone = checked_zone(time_zone)
    session.add(tenant)
    session.execute(
        update(PlanStatusRow).where(col(PlanStatusRow.tenant_id) == tenant_id).values(next_recompute_at=now_utc())
    )
    return tenant
