"""Registering tenants (hospitals or sites), which the operator does, not an API client; and the time zone a page
is read in: the hospital's, or a user's own."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import update
from sqlmodel import Session, col

from service.caseload.recompute import TENANT_ZONE_KEY
from service.caseload.tables import PlanStatusRow
from service.clock import now_utc
from service.db.memo import forget
from service.errors import RecordConflict, RecordNotFound, invalid
from service.records.tenant import Tenant
from service.records.user_time_zone import UserTimeZone

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
    forget(session, key_prefix=TENANT_ZONE_KEY)
    session.execute(
        update(PlanStatusRow).where(col(PlanStatusRow.tenant_id) == tenant_id).values(next_recompute_at=now_utc())
    )
    return tenant


def own_zone(session: Session, tenant_id: str, subject: str) -> str | None:
    own = session.get(UserTimeZone, (tenant_id, subject))
    return own.time_zone if own is not None else None


def reading_zone(session: Session, tenant: Tenant, subject: str) -> str:
    """The zone a user reads times in: their own if they set one, else the hospital's."""
    return own_zone(session, tenant.id, subject) or tenant.time_zone


def set_user_zone(session: Session, tenant_id: str, subject: str, time_zone: str | None) -> UserTimeZone | None:
    """A user's own zone (checked like the hospital's), or None to read times in the hospital's zone again."""
    own = session.get(UserTimeZone, (tenant_id, subject))
    if time_zone is None:
        if own is not None:
            session.delete(own)
        return None
    zone = checked_zone(time_zone)
    if own is None:
        own = UserTimeZone(tenant_id=tenant_id, subject=subject, time_zone=zone)
    else:
        own.time_zone, own.updated_at = zone, now_utc()
    session.add(own)
    return own
