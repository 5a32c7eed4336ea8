"""Managing EHR targets from the sync page: the service functions its forms call (session and context explicit,
audited, in the request's unit of work). Adding and changing a target go through the store, as the API's
/api/v1/sync/targets does (the same validation, URL safety checks and audit); the connection test, backfill and
replay are the sync package's."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.errors import InvalidRequest, RecordNotFound, invalid, validation_problems
from service.outbox import OutboxMessage
from service.record_store.store import create_record, read_record, update_record
from service.records.sync_target import SyncTarget
from service.sync import credentials
from service.sync import status as sync_status
from service.sync.backfill import BackfillSummary, TargetProgress, backfill, target_progress
from service.sync.connection_check import ConnectionReport, check_connection
from service.sync.status import AttemptLog
from service.sync.target_kind import SYNC_TARGETS
from service.sync.targets import CredentialWrite, SyncTargetCreate, SyncTargetPublic
from service.web.sync_admin import OutboxEntry, TargetCounts, outbox_entry, patient_names

MESSAGES_SHOWN = 50


@dataclass(frozen=True)
class TargetView:
    target: SyncTargetPublic
    progress: TargetProgress
    messages: list[OutboxEntry]


@dataclass(frozen=True)
class MessageView:
    entry: OutboxEntry
    operation: str
    correlation_id: str
    created_at: object
    delivered_at: object
    log: list[AttemptLog]


def create_target(session: Session, ctx: RequestContext, body: dict[str, object], token: str) -> SyncTargetPublic:
    """A new target, as POST /api/v1/sync/targets makes it; with a bearer token, the token sealed onto it."""
    try:
        payload = SyncTargetCreate.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(validation_problems(error)) from None
    created, _ = create_record(session, ctx, SYNC_TARGETS, payload)
    assert isinstance(created, SyncTargetPublic)
    return _with_token(session, ctx, created, token)


def change_target(
    session: Session, ctx: RequestContext, target_id: str, body: dict[str, object], version: str, token: str
) -> SyncTargetPublic:
    """The target's settings changed, as PATCH does it (If-Match: the version the form was filled with)."""
    _target(session, ctx, target_id)  # another hospital's target is missing, whatever the form holds
    if not version.isdigit():
        raise invalid("version", "the form has no version: reload the target's page and edit it again")
    changed = update_record(session, ctx, SYNC_TARGETS, target_id, body, f'W/"{version}"')
    assert isinstance(changed, SyncTargetPublic)
    return _with_token(session, ctx, changed, token)


def set_enabled(session: Session, ctx: RequestContext, target_id: str, enabled: str) -> int:
    """Disable a target (nothing new is queued for it; what waits is set aside when its turn comes) or enable it
    again (what was set aside is queued again; Backfill queues what was written meanwhile). `enabled` is the
    form's "true" or "false". Returns how many messages were queued again."""
    current = _target(session, ctx, target_id)
    if enabled not in ("true", "false"):
        raise invalid("enabled", "say true (enable the target) or false (disable it)")
    changes = {"enabled": enabled == "true"}
    update_record(session, ctx, SYNC_TARGETS, target_id, changes, f'W/"{current.version}"')
    return sync_status.requeue_set_aside(session, ctx.tenant_id, target_id) if enabled == "true" else 0


def try_connection(session: Session, ctx: RequestContext, target_id: str) -> ConnectionReport:
    """Metadata, token and the decisions per record kind; audited as a read of the target."""
    ctx.intent = AuditIntent("read", "sync/targets", record_id=target_id)
    target = _target(session, ctx, target_id)
    session.rollback()  # nothing held open while the EHR is asked
    report = check_connection(target, ctx.settings)
    record_success(session, ctx, status_code=200)
    return report


def backfill_target(session: Session, ctx: RequestContext, target_id: str) -> BackfillSummary:
    return backfill(session, ctx, target_id)


def replay_target(session: Session, ctx: RequestContext, target_id: str) -> int:
    """The target's dead letters and the rows waiting out a backoff, sent again now; audited as an update."""
    ctx.intent = AuditIntent("update", "sync-outbox", record_id=target_id)
    count = sync_status.replay(session, ctx.tenant_id, target_id=target_id, with_failed=True)
    record_success(session, ctx, status_code=200)
    return count


def read_target(session: Session, ctx: RequestContext, target_id: str) -> TargetView:
    """The target's settings, where its rows stand and its latest rows (patients by name); audited as a read of
    the target and a list of the outbox."""
    public = read_record(session, ctx, SYNC_TARGETS, target_id)
    assert isinstance(public, SyncTargetPublic)
    progress = target_progress(session, ctx.tenant_id, target_id)
    rows = session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.tenant_id) == ctx.tenant_id, col(OutboxMessage.target_id) == target_id)
        .order_by(col(OutboxMessage.updated_at).desc(), col(OutboxMessage.id).desc())
        .limit(MESSAGES_SHOWN)
    ).all()
    ctx.intent = AuditIntent("list", "sync-outbox", record_id=target_id)
    names = patient_names(session, ctx, [m.patient_id for m in rows])
    targets = {target_id: TargetCounts(target_id, public.name, public.enabled, base_url=public.base_url)}
    record_success(session, ctx, status_code=200, patient_ids=[m.patient_id for m in rows])
    return TargetView(public, progress, [outbox_entry(m, targets, names) for m in rows])


def read_message(session: Session, ctx: RequestContext, message_id: int) -> MessageView:
    """One outbox row with its request log; audited as a read of the outbox about its patient."""
    ctx.intent = AuditIntent("read", "sync-outbox", record_id=str(message_id))
    row = session.get(OutboxMessage, message_id)
    if row is None or row.tenant_id != ctx.tenant_id:
        raise RecordNotFound("outbox message", str(message_id))
    detail = sync_status.outbox_detail(session, ctx.tenant_id, message_id)
    target = session.get(SyncTarget, row.target_id)
    targets = {t.id: TargetCounts(t.id, t.name, t.enabled, base_url=t.base_url) for t in [target] if t is not None}
    names = patient_names(session, ctx, [row.patient_id])
    ctx.intent.patient_id = row.patient_id
    record_success(session, ctx, status_code=200, patient_ids=[row.patient_id])
    return MessageView(
        entry=outbox_entry(row, targets, names),
        operation=row.operation,
        correlation_id=row.correlation_id,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        log=detail.log,
    )


def _target(session: Session, ctx: RequestContext, target_id: str) -> SyncTarget:
    target = session.get(SyncTarget, target_id)
    if target is None or target.tenant_id != ctx.tenant_id:
        raise RecordNotFound("EHR sync target", target_id)
    return target


def _with_token(session: Session, ctx: RequestContext, public: SyncTargetPublic, token: str) -> SyncTargetPublic:
    """Seal a bearer token posted with the form (never shown again; empty: the stored one is kept)."""
    if not token:
        return public
    if public.auth.kind != "bearer":
        raise invalid("token", "a token is kept only for a target whose authentication is a bearer token")
    try:
        CredentialWrite(token=token)
    except ValidationError as error:
        raise InvalidRequest([invalid("token", p.message).problems[0] for p in validation_problems(error)]) from None
    target = _target(session, ctx, public.id)
    try:
        credentials.write_token(ctx.settings, target, token)
    except credentials.CredentialError as error:
        raise invalid("token", str(error)) from None
    session.add(target)
    session.flush()
    return public
