"""Protocols available to a tenant: the built-ins and the tenant's own, each version kept."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.caseload.tables import TenantProtocol
from service.db.memo import forget, remembered
from service.errors import RecordConflict, invalid
from service.plan_status import BUILT_IN_PROTOCOLS, Protocol

# A unit asks once (each refreshed patient's recompute asks); adding a protocol forgets the answer.
PROTOCOLS_KEY = "tenant protocols"


def available_protocols(session: Session, tenant_id: str) -> list[Protocol]:
    def look_up() -> list[Protocol]:
        rows = session.exec(
            select(TenantProtocol)
            .where(col(TenantProtocol.tenant_id) == tenant_id)
            .order_by(col(TenantProtocol.created_at))
        )
        return [*BUILT_IN_PROTOCOLS.values(), *(Protocol.model_validate(row.definition) for row in rows)]

    return list(remembered(session, (PROTOCOLS_KEY, tenant_id), look_up))


def find_protocol(session: Session, tenant_id: str, protocol_id: str, version: str | None) -> Protocol | None:
    """A given version, or the newest one (the last added) when version is None."""
    matching = [p for p in available_protocols(session, tenant_id) if p.id == protocol_id]
    if version is not None:
        matching = [p for p in matching if p.version == version]
    return matching[-1] if matching else None


def add_protocol(session: Session, *, tenant_id: str, protocol: Protocol, author: str) -> Protocol:
    """Store a (validated) tenant protocol; a built-in id/version cannot be overwritten."""
    if (protocol.id, protocol.version) in BUILT_IN_PROTOCOLS:
        raise invalid(
            "version", f"{protocol.id} version {protocol.version} is built in; give your protocol a new version"
        )
    row = TenantProtocol(
        tenant_id=tenant_id,
        protocol_id=protocol.id,
        version=protocol.version,
        definition=protocol.model_dump(mode="json"),
        created_by=author,
    )
    try:
        with session.begin_nested():  # a duplicate fails on the unique key; the caller's transaction goes on
            session.add(row)
            session.flush()
    except IntegrityError:
        forget(session, key_prefix=PROTOCOLS_KEY)
        raise RecordConflict(
            f"{protocol.id} version {protocol.version} already exists; protocols are never changed in place"
        ) from None
    forget(session, key_prefix=PROTOCOLS_KEY)
    return protocol
