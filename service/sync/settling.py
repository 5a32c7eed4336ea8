"""Settling attempts: an outbox row's new state, its request log and the remote ids its delivery confirmed."""

from __future__ import annotations

from sqlmodel import Session, col, select

from service.sync.tables import RemoteResource


def store_remote(session: Session, rows: list[RemoteResource]) -> None:
    """Upsert (target, record, role) -> remote id/version; part of the caller's transaction. One query for all."""
    if not rows:
        return
    found = session.exec(
        select(RemoteResource).where(
            col(RemoteResource.target_id).in_({row.target_id for row in rows}),
            col(RemoteResource.record_kind).in_({row.record_kind for row in rows}),
            col(RemoteResource.record_id).in_({row.record_id for row in rows}),
        )
    ).all()
    current = {(r.target_id, r.record_kind, r.record_id, r.role): r for r in found}
    for row in rows:
        key = (row.target_id, row.record_kind, row.record_id, row.role)
        existing = current.get(key)
        if existing is None:
            session.add(row)
            current[key] = row
        else:
            for name in ("resource_type", "local_id", "remote_id", "remote_version", "record_version", "updated_at"):
                setattr(existing, name, getattr(row, name))
            session.add(existing)
