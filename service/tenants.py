"""Registering tenants (hospitals or sites); the operator does this, not an API client."""

from __future__ import annotations

import re

from sqlmodel import Session

from service.errors import RecordConflict, invalid
from service.records.tenant import Tenant

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def register_tenant(session: Session, *, tenant_id: str, name: str) -> Tenant:
    if not TENANT_ID.match(tenant_id):
        raise invalid("tenant_id", "use 1-63 lowercase letters, digits and hyphens, e.g. st-olav-oslo")
    if session.get(Tenant, tenant_id) is not None:
        raise RecordConflict(f"tenant {tenant_id!r} is already registered")
    tenant = Tenant(id=tenant_id, name=name)
    session.add(tenant)
    session.commit()
    return tenant


def tenant_exists(session: Session, tenant_id: str) -> bool:
    return session.get(Tenant, tenant_id) is not None
