"""The tenant's EHR sync targets as a unit of work reads them: once (service/db/memo.py). Every write asks which
targets take its kind (the outbox) and every intake which site codes they map (the code maps); a Bundle's
entries ask again and again, and targets are changed by an administrator's own request, whose write forgets them
(`targets_changed`) so the rest of that unit reads them anew."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from service.db.memo import forget, remembered
from service.records.sync_target import SyncTarget

TARGETS_KEY = "tenant sync targets"  # what is kept from them is forgotten with them (key prefix)


@dataclass(frozen=True)
class TargetFacts:
    id: str
    enabled: bool
    push: frozenset[str]
    code_map: dict[str, Any]


def tenant_targets(session: Session, tenant_id: str) -> list[TargetFacts]:
    def look_up() -> list[TargetFacts]:
        rows = session.exec(
            select(SyncTarget.id, SyncTarget.enabled, SyncTarget.push, SyncTarget.code_map).where(
                col(SyncTarget.tenant_id) == tenant_id
            )
        ).all()
        return [TargetFacts(i, on, frozenset(push or ()), dict(code_map or {})) for i, on, push, code_map in rows]

    return remembered(session, (TARGETS_KEY, tenant_id), look_up)


def targets_changed(session: Session) -> None:
    """A target written in this unit of work: what was derived from the targets is read again."""
    forget(session, key_prefix=TARGETS_KEY)
