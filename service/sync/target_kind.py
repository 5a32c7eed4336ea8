"""EHR sync targets as a table of the generic /api/v1 routes: administration of the deployment, not a clinical
record kind. Admins only, role-only (no SMART scope names them), audited like every route; no FHIR projection,
no plan refresh, no outbox row."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.audit_trail import RequestContext
from service.record_store.kinds import ADMINS, StoredKind
from service.records.sync_target import SyncTarget
from service.sync import targets
from service.sync.quarantine import defer_code_map_retry
from service.tenant_targets import targets_changed


def _checked(session: Session, ctx: RequestContext, columns: dict[str, Any]) -> dict[str, Any]:
    """The target's checks; and a changed code map may now map what a pull refused: the target's quarantined items
    refused under another map are retried before the write commits."""
    columns = targets.checked_target(session, ctx, columns)
    targets_changed(session)
    defer_code_map_retry(session, ctx.settings, ctx.tenant_id)
    return columns


SYNC_TARGETS = StoredKind(
    label="EHR sync target",
    article="an",
    path="sync/targets",
    schema_name="SyncTarget",
    table=SyncTarget,
    fields_schema=targets.SyncTargetFields,
    create_schema=targets.SyncTargetCreate,
    public_schema=targets.SyncTargetPublic,
    time_column="created_at",
    readers=ADMINS,
    writers=ADMINS,
    immutable=frozenset(),
    patient_scoped=False,
    has_status=False,
    derive=_checked,
    from_columns=targets.public_columns,
)
