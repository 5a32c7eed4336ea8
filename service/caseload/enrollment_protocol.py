"""An enrollment names a protocol the tenant has; it keeps the version it started with."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.audit_trail import RequestContext
from service.caseload.protocols import find_protocol
from service.errors import invalid


def pinned_protocol(session: Session, ctx: RequestContext, columns: dict[str, Any]) -> dict[str, Any]:
    protocol = find_protocol(session, ctx.tenant_id, columns["protocol_id"], columns.get("protocol_version"))
    if protocol is None:
        wanted = columns["protocol_id"] + (
            f" version {columns['protocol_version']}" if columns.get("protocol_version") else ""
        )
        raise invalid("protocol_id", f"no protocol {wanted}; GET /api/v1/protocols lists the available ones")
    return {**columns, "protocol_version": protocol.version}
