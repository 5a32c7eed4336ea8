"""Writing audit rows: on success inside the request's transaction, on failure in a transaction of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine, insert
from sqlmodel import Session

from service.auth.principal import Principal
from service.clock import now_utc
from service.db.unit_of_work import insert_rows, unit_of_work
from service.records.audit import AuditAction, AuditEvent
from service.records.base import new_id
from service.records.received import Received
from service.settings import Settings


@dataclass
class AuditIntent:
    """What a request is about to do, known before it runs, so a failure can still be recorded."""

    action: AuditAction
    record_kind: str
    record_id: str | None = None
    patient_id: str | None = None
    purpose: str | None = None  # "BTG" for break-the-glass starts and ends


@dataclass
class RequestContext:
    """The caller, the request id and the settings, passed explicitly to every service function."""

    principal: Principal
    request_id: str
    settings: Settings
    intent: AuditIntent | None = field(default=None)
    # The EHR target a pulled record came from: its changes are not echoed back there.
    origin_target: str | None = None
    # Whose ids the sent resources' references and ids are (service.intake.context.from_request): None for our
    # own; a sender's namespace (a target's base URL) for a Bulk Data export imported with `--source`.
    sender_namespace: str | None = None
    # The sender's (type, id) -> our record id for what this run took in already (an import's earlier lines).
    sender_ids: Callable[[str, str], str | None] | None = None
    # Restricted patients this caller may not see, and those it sees under a break-the-glass grant; worked out
    # once per request by service.break_glass.access.
    hidden_patients: frozenset[str] | None = None
    break_glass_patients: frozenset[str] = frozenset()
    # What the intake of this request's resource read (the resource as sent, the elements it did not use): the
    # store keeps it with the record it writes next (provenance), then clears it.
    received: Received | None = None

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id


def _row(ctx: RequestContext, intent: AuditIntent, patient_id: str | None, status_code: int) -> dict[str, object]:
    return {
        "id": new_id(),
        "occurred_at": now_utc(),
        "tenant_id": ctx.tenant_id,
        "actor": ctx.principal.subject,
        "actor_role": ctx.principal.role,
        "action": intent.action,
        "record_kind": intent.record_kind,
        "record_id": intent.record_id[:64] if intent.record_id else None,  # a hostile id must not break the audit
        "patient_id": patient_id,
        "outcome": "success" if status_code < 400 else "failure",
        "status_code": status_code,
        "request_id": ctx.request_id,
        "purpose": "BTG" if patient_id in ctx.break_glass_patients else intent.purpose,
    }


def record_success(
    session: Session, ctx: RequestContext, *, status_code: int, patient_ids: Iterable[str | None] = ()
) -> None:
    """One row per patient touched (a list touches many); part of the caller's transaction."""
    intent = ctx.intent
    assert intent is not None, "a service function must declare its audit intent first"
    patients = list(dict.fromkeys(patient_ids)) or [intent.patient_id]
    insert_rows(session, AuditEvent, [_row(ctx, intent, patient_id, status_code) for patient_id in patients])


def record_refusal(session: Session, ctx: RequestContext, status_code: int) -> None:
    """A refused part of a unit of work that carries on (a batch entry, rolled back to its savepoint): the failed
    attempt is audited in the unit itself, which still holds the write lock a transaction of its own would wait on."""
    if ctx.intent is not None:
        session.execute(insert(AuditEvent), [_row(ctx, ctx.intent, ctx.intent.patient_id, status_code)])


def record_failure(engine: Engine, ctx: RequestContext, status_code: int) -> None:
    """A refused or failed attempt, written after the request's own transaction was rolled back."""
    if ctx.intent is None:
        return
    with unit_of_work(engine) as session:
        session.execute(insert(AuditEvent), [_row(ctx, ctx.intent, ctx.intent.patient_id, status_code)])
