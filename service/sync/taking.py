"""Taking in one resource a target holds (a pull's search result, an $export line, a quarantined item retried):
through the one intake for its type (service/intake INTAKES), then the store, as any write. What the intake or the
store refuses goes to the target's quarantine with its reason and the raw resource (nothing refused is lost), and
an item that is later taken leaves it ("accepted").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from sqlmodel import Session, col, select

import fhir_mappings as fm
from service.audit_trail import AuditIntent, RequestContext, record_success
from service.auth.principal import Principal
from service.clock import now_utc
from service.errors import InvalidRequest, TandemError
from service.intake import INTAKES, Intake, IntakeFunction, reference_resolver, with_standard_codings
from service.intake import take_in as take_received
from service.record_store import store
from service.record_store.kinds import RECORD_KINDS, RecordKind
from service.records.enrollment import EnrollmentCreate
from service.records.patient import PatientCreate
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.patient_links import follow_pulled_patient, link_pulled_patient
from service.sync.referral_changes import follow_referral
from service.sync.tables import QuarantinedResource, RemoteResource
from service.sync.targets import referral_rule

Taken = Literal["created", "updated", "already_present", "skipped", "refused"]
REASON_CHARS = 2000
ELEMENT_CHARS = 512


@dataclass(frozen=True)
class Outcome:
    taken: Taken
    record_id: str | None = None
    reason: str | None = None  # why it was refused: "<element>: <message>"


def system_context(settings: Settings, tenant_id: str, target_id: str) -> RequestContext:
    principal = Principal(
        subject=f"sync:{target_id}", tenant_id=tenant_id, role="ehr-system", scopes=None, client_id=None
    )
    return RequestContext(principal=principal, request_id=str(uuid.uuid4()), settings=settings, origin_target=target_id)


def source_system(target: SyncTarget) -> str:
    """The namespace of the target's own ids in our records' `source` (value "<Type>/<id>")."""
    return target.base_url


def take_in(session: Session, settings: Settings, target: SyncTarget, resource: dict[str, Any]) -> Outcome:
    """One resource from the target, taken in or quarantined. The caller's unit of work (or savepoint) holds it:
    on a refusal the partial write is undone by the caller's rollback, then `quarantine` is written."""
    base = settings.canonical_base
    if _ours_derived(resource, base):
        return Outcome("skipped")
    resource_type = str(resource.get("resourceType"))
    if resource_type == "ServiceRequest" and not fm.is_programme_referral(resource, base, referral_rule(target)):
        return Outcome("skipped")  # another order of the patient (a lab, an imaging study): not ours to take
    take = _intake_for(resource_type)
    if take is None:
        return Outcome("refused", reason=f"{resource_type}: Tandem takes in no {resource_type}")
    ctx = system_context(settings, target.tenant_id, target.id)
    try:
        # The target's own codes (flowsheet rows, visit types) read as the standard ones its code map names.
        standard = with_standard_codings(session, target.tenant_id, resource, target.id)
        # The resource as the EHR sent it is kept with the record (provenance).
        payload, ctx.received = take_received(take, _intake(session, target, base), standard, sent=resource)
    except InvalidRequest as error:
        return Outcome("refused", reason=_reason(error))
    kind = _record_kind(payload)
    if kind is None:
        return Outcome("refused", reason=f"{resource_type}: no record kind stores {type(payload).__name__}")
    if isinstance(payload, PatientCreate) and (same := link_pulled_patient(session, target, payload, resource)):
        # Tandem holds this patient by MRN: the EHR's id now names it, and no second patient is made.
        if follow_pulled_patient(session, ctx, same, payload):
            return Outcome("updated", same.id)  # update_record kept the resource and wrote the audit row
        ctx.intent = AuditIntent("create", kind.path, record_id=same.id, patient_id=same.id)
        store.keep_received(session, ctx, kind, same.id)
        record_success(session, ctx, status_code=200, patient_ids=[same.id])
        return Outcome("already_present", same.id)
    try:
        record, created = store.create_record(session, ctx, kind, payload)
        if not created and isinstance(payload, EnrollmentCreate):
            follow_referral(session, ctx, record, payload)  # held or discharged at the EHR since
    except TandemError as error:
        return Outcome("refused", reason=_reason(error))
    return Outcome("created" if created else "already_present", record.id)


def quarantine(session: Session, target: SyncTarget, resource: dict[str, Any], reason: str) -> QuarantinedResource:
    """Keep a refused resource (or count one more sighting of it), with the latest reason."""
    resource_type, remote_id = str(resource.get("resourceType")), str(resource.get("id"))
    row = _quarantined(session, target.id, resource_type, remote_id)
    now = now_utc()
    element, _, _ = reason.partition(": ")
    if row is None:
        row = QuarantinedResource(
            tenant_id=target.tenant_id,
            target_id=target.id,
            resource_type=resource_type,
            remote_id=remote_id[:64],
            element=element[:ELEMENT_CHARS],
            reason=reason[:REASON_CHARS],
            resource=resource,
            state="refused",
            attempts=1,
            first_seen=now,
            last_seen=now,
            code_map_digest=code_map_digest(target.code_map),
        )
    else:
        row.attempts += 1
        row.element, row.reason, row.resource, row.last_seen = (
            element[:ELEMENT_CHARS],
            reason[:REASON_CHARS],
            resource,
            now,
        )
        row.state, row.record_id = "refused", None
        row.code_map_digest = code_map_digest(target.code_map)
    session.add(row)
    session.flush()
    return row


def release(session: Session, target: SyncTarget, resource: dict[str, Any], record_id: str | None) -> None:
    """A quarantined resource taken in at last (a retry, or the EHR's corrected version in a later pull)."""
    row = _quarantined(session, target.id, str(resource.get("resourceType")), str(resource.get("id")))
    if row is not None and row.state != "accepted":
        row.state, row.record_id, row.last_seen = "accepted", record_id, now_utc()
        row.attempts += 1
        session.add(row)


def code_map_digest(code_map: dict[str, Any] | None) -> str:
    return hashlib.sha256(json.dumps(code_map or {}, sort_keys=True).encode()).hexdigest()


def _quarantined(session: Session, target_id: str, resource_type: str, remote_id: str) -> QuarantinedResource | None:
    return session.exec(
        select(QuarantinedResource).where(
            col(QuarantinedResource.target_id) == target_id,
            col(QuarantinedResource.resource_type) == resource_type,
            col(QuarantinedResource.remote_id) == remote_id[:64],
        )
    ).first()


def _reason(error: TandemError) -> str:
    problems = getattr(error, "problems", None) or []
    if problems:
        return "; ".join(f"{p.field}: {p.message}" for p in problems)
    return str(error)


def _ours_derived(resource: dict[str, Any], canonical_base: str) -> bool:
    """A resource we derived from one of our records (a score Observation, a vital sign): not a record itself."""
    prefix = f"{canonical_base}/identifier/"
    raw = resource.get("identifier") or []
    for identifier in [raw] if isinstance(raw, dict) else raw:
        if (
            isinstance(identifier, dict)
            and str(identifier.get("system", "")).startswith(prefix)
            and "/" in str(identifier.get("value", ""))
        ):
            return True
    return False


def _record_kind(payload: BaseModel) -> RecordKind | None:
    """The kind that stores what the intake made (an Observation's intake makes a response or a vital sign)."""
    return next((kind for kind in RECORD_KINDS if isinstance(payload, kind.create_schema)), None)


def _intake_for(resource_type: str) -> IntakeFunction | None:
    return INTAKES.get(resource_type)


def _intake(session: Session, target: SyncTarget, base: str) -> Intake:
    """The same intake as a resource sent to us, with references and ids in the target's namespace."""

    def known(resource_type: str, remote_id: str) -> str | None:
        """A resource we wrote at the target (or a patient linked to the EHR's by MRN)."""
        ours: str | None = session.exec(
            select(RemoteResource.record_id).where(
                col(RemoteResource.target_id) == target.id,
                col(RemoteResource.resource_type) == resource_type,
                col(RemoteResource.remote_id) == remote_id,
                col(RemoteResource.role) == "main",
            )
        ).first()
        return ours

    source = source_system(target)
    resolve = reference_resolver(session, target.tenant_id, source_system=source, known=known)
    mrn_systems = frozenset({target.mrn_system}) if target.mrn_system else frozenset()
    return Intake(
        session,
        target.tenant_id,
        base,
        resolve,
        source_system=source,
        mrn_systems=mrn_systems,
        referral_rule=referral_rule(target),
    )
