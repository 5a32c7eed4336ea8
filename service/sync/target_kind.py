"""EHR sync targets as a table of the generic /api/v1 routes: administration of the deployment, not a clinical
record kind. Admins only, role-only (no SMART scope names them), audited like every route; no FHIR projection,
no plan refresh, no outbox row."""

from __future__ import annotations

from service.record_store.kinds import ADMINS, StoredKind
from service.records.sync_target import SyncTarget
from service.sync import targets

SYNC_TARGETS = StoredKind(
    label="EHR sync target",
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
    derive=targets.checked_target,
    from_columns=targets.public_columns,
)
