"""Creating, reading, listing and updating records: the one path every edge (API, FHIR, import, sync) goes through.

Each function declares its audit intent, checks the tenant and writes the audit row in the caller's unit of work;
none commits. The edge commits the unit before it answers, so a client never sees success for something not
stored (service/db/unit_of_work.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import JSON, and_, or_
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.break_glass.access import check_restriction_change, ensure_visible, visible
from service.clock import now_utc
from service.db.cursor import decode_cursor, encode_cursor
from service.db.memo import COUNTED, forget, memo
from service.db.unit_of_work import insert_rows, write_inserts
from service.errors import (
    InvalidRequest,
    RecordConflict,
    RecordNotFound,
    VersionMismatch,
    VersionRequired,
    invalid,
    validation_problems,
)
from service.record_store.kinds import ENROLLMENTS, Columns, RecordKind, StoredKind
from service.record_store.side_effects import record_written
from service.records.base import OWN_SOURCE_SYSTEM, RecordMeta, SourceIdentifier, TenantRecord, record_meta
from service.records.enrollment import DECEASED_REASON, Enrollment
from service.records.patient import Patient, PatientIdentifier
from service.records.received import ReceivedResource
from service.records.sources import note_stored, stored_by_source

ETAG_PATTERN = re.compile(r'^(?:W/)?"(\d{1,9})"$')


@dataclass(frozen=True)
class ListFilters:
    limit: int
    patient_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    identifier: str | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[RecordMeta]
    next_cursor: str | None


# ---- create ---------------------------------------------------------------------------------------------------


def create_record(
    session: Session, ctx: RequestContext, kind: StoredKind, payload: BaseModel
) -> tuple[RecordMeta, bool]:
    """Store a new record, or return the one already stored under the same source identifier (created=False)."""
    values = payload.model_dump(exclude={"source"})
    ctx.intent = AuditIntent("create", kind.path, patient_id=values.get("patient_id"))
    source: SourceIdentifier | None = getattr(payload, "source", None)
    ensure_visible(session, ctx, values.get("patient_id") if kind.table is not Patient else None)
    if source is not None:
        existing = stored_by_source(session, kind.table, ctx.tenant_id, source.system, source.value)
        if existing is not None:
            return _finish_resend(session, ctx, kind, existing), False
    elif kind.match_unsourced is not None and (same := kind.match_unsourced(session, ctx.tenant_id, values)):
        return _finish_resend(session, ctx, kind, same), False  # a Patient named only by its MRN, sent again
    _check_references(session, ctx.tenant_id, kind, values)
    columns = kind.derive(session, ctx, _columns(kind, payload))
    row = kind.table(tenant_id=ctx.tenant_id, source_system="", source_id="", **columns)
    row.source_system, row.source_id = (source.system, source.value) if source else (OWN_SOURCE_SYSTEM, row.id)
    try:
        # A savepoint: a concurrent duplicate fails on the unique constraint without losing the transaction.
        with session.begin_nested():
            session.add(row)
            session.flush()
            if kind.save_children is not None:
                kind.save_children(session, row, values)
    except IntegrityError:
        existing = (
            stored_by_source(session, kind.table, ctx.tenant_id, row.source_system, row.source_id, fresh=True)
            if source
            else None
        )
        if existing is None:
            raise _conflict(kind, values) from None
        return _finish_resend(session, ctx, kind, existing), False
    ctx.intent.record_id = row.id
    note_stored(session, row)
    keep_received(session, ctx, kind, row.id, new_record=True)
    public = _public(session, kind, [row])[0]
    if isinstance(kind, RecordKind):  # an administration table's write sets nothing off
        record_written(session, ctx, kind, row, public, created=True)
    record_success(session, ctx, status_code=201, patient_ids=[kind.patient_of(row)])
    _end_enrollments_of_the_deceased(session, ctx, row)
    return public, True


def _finish_resend(session: Session, ctx: RequestContext, kind: StoredKind, row: TenantRecord) -> RecordMeta:
    assert ctx.intent is not None
    ctx.intent.record_id = row.id
    keep_received(session, ctx, kind, row.id)  # a resend may carry what the sender changed since
    ensure_visible(session, ctx, kind.patient_of(row))  # a resend must not reveal a restricted patient's record
    record_success(session, ctx, status_code=200, patient_ids=[kind.patient_of(row)])
    public = _public(session, kind, [row])[0]
    return public


def _conflict(kind: StoredKind, values: Columns) -> RecordConflict:
    if kind.table is Patient and values.get("identifiers"):
        return RecordConflict("an identifier of this patient already belongs to another patient of this tenant")
    return RecordConflict(f"a stored {kind.label} already has one of this {kind.label}'s unique values (e.g. its name)")


# ---- read and list --------------------------------------------------------------------------------------------


def read_record(session: Session, ctx: RequestContext, kind: StoredKind, record_id: str) -> RecordMeta:
    ctx.intent = AuditIntent("read", kind.path, record_id=record_id)
    row = _get(session, ctx.tenant_id, kind, record_id)
    ctx.intent.patient_id = kind.patient_of(row)
    ensure_visible(session, ctx, ctx.intent.patient_id)
    record_success(session, ctx, status_code=200, patient_ids=[ctx.intent.patient_id])
    public = _public(session, kind, [row])[0]
    return public


def list_records(session: Session, ctx: RequestContext, kind: StoredKind, filters: ListFilters) -> Page:
    ctx.intent = AuditIntent("list", kind.path, patient_id=filters.patient_id)
    table = kind.table
    time_col = _column(table, kind.time_column)
    query = select(table).where(col(table.tenant_id) == ctx.tenant_id)
    if kind.patient_scoped:
        owner = _column(table, "id" if table is Patient else "patient_id")
        ensure_visible(session, ctx, filters.patient_id)
        if filters.patient_id is not None:
            query = query.where(owner == filters.patient_id)
        if (not_hidden := visible(session, ctx, owner)) is not None:
            query = query.where(not_hidden)
    if filters.status is not None and kind.has_status:
        query = query.where(_column(table, "status") == filters.status)
    if filters.since is not None:
        query = query.where(time_col >= filters.since)
    if filters.until is not None:
        query = query.where(time_col < filters.until)
    if filters.identifier is not None:
        query = query.where(_identifier_clause(ctx.tenant_id, kind, filters.identifier))
    if filters.cursor is not None:
        after_time, after_id = _decode_cursor(filters.cursor)
        query = query.where(or_(time_col > after_time, and_(time_col == after_time, col(table.id) > after_id)))
    rows = list(session.exec(query.order_by(time_col, col(table.id)).limit(filters.limit + 1)))
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    record_success(session, ctx, status_code=200, patient_ids=[kind.patient_of(r) for r in rows])
    items = _public(session, kind, rows)
    next_cursor = _encode_cursor(getattr(rows[-1], kind.time_column), rows[-1].id) if more else None
    return Page(items=items, next_cursor=next_cursor)


def _identifier_clause(tenant_id: str, kind: StoredKind, identifier: str) -> Any:
    system, separator, value = identifier.rpartition("|")
    if not separator or not system or not value:
        raise invalid("identifier", "expected system|value, e.g. urn:oid:1.2.3|MRN-0001")
    table = kind.table
    by_source = and_(col(table.source_system) == system, col(table.source_id) == value)
    if table is not Patient:
        return by_source
    by_mrn = col(table.id).in_(
        select(PatientIdentifier.patient_id).where(
            col(PatientIdentifier.tenant_id) == tenant_id,
            col(PatientIdentifier.system) == system,
            col(PatientIdentifier.value) == value,
        )
    )
    return or_(by_source, by_mrn)


def _encode_cursor(time_value: datetime, record_id: str) -> str:
    return encode_cursor(time_value.isoformat(), record_id)


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        time_text, record_id = decode_cursor(cursor, 2)
        moment = datetime.fromisoformat(time_text)
    except (ValueError, TypeError):
        raise invalid("cursor", "not a cursor this service issued; start again without it") from None
    if not isinstance(record_id, str):
        raise invalid("cursor", "not a cursor this service issued; start again without it")
    return moment, record_id


# ---- update ---------------------------------------------------------------------------------------------------


def expected_version(if_match: str | None) -> int:
    """The version an If-Match names: the change is made to what the client read, or refused."""
    if if_match is None:
        raise VersionRequired('send If-Match with the ETag of the version you read, e.g. If-Match: W/"3"')
    expected = ETAG_PATTERN.match(if_match.strip())
    if expected is None:
        raise invalid("If-Match", 'expected an ETag such as W/"3"')
    return int(expected.group(1))


def check_version(current: int, expected: int, if_match: str | None) -> None:
    if current != expected:
        raise VersionMismatch(current, if_match or "")


def update_record(
    session: Session,
    ctx: RequestContext,
    kind: StoredKind,
    record_id: str,
    changes: dict[str, Any],
    if_match: str | None,
) -> RecordMeta:
    """Apply a partial change under optimistic concurrency: If-Match must carry the version last read."""
    ctx.intent = AuditIntent("update", kind.path, record_id=record_id)
    expected = expected_version(if_match)
    row = _get(session, ctx.tenant_id, kind, record_id, for_update=True)
    ctx.intent.patient_id = kind.patient_of(row)
    ensure_visible(session, ctx, ctx.intent.patient_id)
    check_version(row.version, expected, if_match)
    current = _public(session, kind, [row])[0].model_dump(include=set(kind.fields_schema.model_fields))
    for name in kind.immutable & changes.keys():
        if changes[name] != current[name]:
            raise invalid(name, f"cannot be changed on an existing {kind.label}; record a new one instead")
    try:
        merged = kind.fields_schema.model_validate({**current, **changes})
    except ValidationError as error:
        raise InvalidRequest(validation_problems(error)) from None
    values = merged.model_dump()
    if isinstance(row, Patient):
        check_restriction_change(ctx, row.restricted, values["restricted"])
    _check_references(session, ctx.tenant_id, kind, values)
    for name, value in kind.derive(session, ctx, _columns(kind, merged)).items():
        setattr(row, name, value)
    row.version += 1
    row.updated_at = now_utc()
    forget(session, key_prefix=COUNTED)  # a changed date or status may change what an intake counted
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            if kind.save_children is not None:
                kind.save_children(session, row, values)
    except IntegrityError:
        raise _conflict(kind, values) from None
    keep_received(session, ctx, kind, row.id)
    public = _public(session, kind, [row])[0]
    if isinstance(kind, RecordKind):  # an administration table's write sets nothing off
        record_written(session, ctx, kind, row, public, created=False)
    record_success(session, ctx, status_code=200, patient_ids=[ctx.intent.patient_id])
    _end_enrollments_of_the_deceased(session, ctx, row)
    return public


# ---- a deceased patient ---------------------------------------------------------------------------------------


def _end_enrollments_of_the_deceased(session: Session, ctx: RequestContext, row: TenantRecord) -> None:
    """A patient written as deceased (Patient.deceased[x]) has every open enrolment ended, reason "Patient
    deceased" (CLINICAL.md §5), by this same update path: plan refresh, audit row and EHR outbox follow. Here,
    in the one write path, so every way a Patient arrives (POST, PUT, Bundle, import, pull, JSON API) does it."""
    if not isinstance(row, Patient) or not row.deceased:
        return
    intent = ctx.intent
    open_ones = session.exec(
        select(Enrollment.id, Enrollment.version).where(
            col(Enrollment.tenant_id) == ctx.tenant_id,
            col(Enrollment.patient_id) == row.id,
            col(Enrollment.status).in_(("active", "on-hold")),
        )
    ).all()
    when = f" ({row.deceased_at})" if row.deceased_at else ""
    for enrollment_id, version in open_ones:
        changes = {"status": "discontinued", "status_reason": f"{DECEASED_REASON}{when}"}
        update_record(session, ctx, ENROLLMENTS, enrollment_id, changes, f'W/"{version}"')
    ctx.intent = intent


# ---- provenance -----------------------------------------------------------------------------------------------


def keep_received(
    session: Session, ctx: RequestContext, kind: StoredKind, record_id: str, *, new_record: bool = False
) -> None:
    """Keep the resource this request's intake read with the record just written (the one place provenance is
    written: every intake's record passes through here). The same JSON sent again is not kept twice; a record
    created by this write has nothing kept before it (new_record: nothing is read)."""
    received, ctx.received = ctx.received, None
    if received is None:
        return
    if not new_record:
        write_inserts(session)  # what an earlier write of this unit kept
        latest = session.exec(
            select(ReceivedResource.resource)
            .where(
                col(ReceivedResource.tenant_id) == ctx.tenant_id,
                col(ReceivedResource.record_kind) == kind.path,
                col(ReceivedResource.record_id) == record_id,
            )
            .order_by(col(ReceivedResource.id).desc())
            .limit(1)
        ).first()
        if latest == received.resource:
            return
    row = {
        "tenant_id": ctx.tenant_id,
        "record_kind": kind.path,
        "record_id": record_id,
        "resource_type": received.resource_type,
        "source_system": received.source_system,
        "sender": ctx.principal.subject[:255],
        "request_id": ctx.request_id[:128],
        "received_at": now_utc(),
        "resource": received.resource,
        "unused": list(received.unused),
    }
    insert_rows(session, ReceivedResource, [row])


def received_for(session: Session, ctx: RequestContext, kind: StoredKind, record_id: str) -> list[ReceivedResource]:
    """What senders sent for a record, oldest first: read like the record itself (tenant, restriction, audit)."""
    ctx.intent = AuditIntent("read", f"{kind.path}/received", record_id=record_id)
    write_inserts(session)
    row = _get(session, ctx.tenant_id, kind, record_id)
    ctx.intent.patient_id = kind.patient_of(row)
    ensure_visible(session, ctx, ctx.intent.patient_id)
    found = list(
        session.exec(
            select(ReceivedResource)
            .where(
                col(ReceivedResource.tenant_id) == ctx.tenant_id,
                col(ReceivedResource.record_kind) == kind.path,
                col(ReceivedResource.record_id) == record_id,
            )
            .order_by(col(ReceivedResource.id))
        )
    )
    record_success(session, ctx, status_code=200, patient_ids=[ctx.intent.patient_id])
    return found


# ---- shared pieces --------------------------------------------------------------------------------------------


def public_record(session: Session, kind: StoredKind, row: TenantRecord) -> RecordMeta:
    """A stored row in its API shape (what the mappings and the sync read)."""
    return _public(session, kind, [row])[0]


def public_records(session: Session, kind: StoredKind, rows: list[TenantRecord]) -> list[RecordMeta]:
    """Stored rows in their API shape, their children read together."""
    return _public(session, kind, rows)


def locked_record(session: Session, tenant_id: str, kind: StoredKind, record_id: str) -> TenantRecord:
    """The record, locked for update until the transaction ends (a no-op lock on SQLite, which serialises writers)."""
    return _get(session, tenant_id, kind, record_id, for_update=True)


def _column(table: type[TenantRecord], name: str) -> Any:
    return sa_inspect(table).columns[name]


def _get(
    session: Session, tenant_id: str, kind: StoredKind, record_id: str, *, for_update: bool = False
) -> TenantRecord:
    query = select(kind.table).where(col(kind.table.tenant_id) == tenant_id, col(kind.table.id) == record_id)
    if for_update:
        # NO KEY UPDATE: a concurrent insert that references this row (its FK check takes KEY SHARE) must not
        # deadlock with us; we never change a row's key.
        query = query.with_for_update(key_share=True)
    row = session.exec(query).first()
    if row is None:
        raise RecordNotFound(kind.label, record_id)
    return row


def _check_references(session: Session, tenant_id: str, kind: StoredKind, values: Columns) -> None:
    """Referenced records must exist in the caller's tenant; another tenant's id reads exactly like a missing one."""
    known = memo(session)
    for ref in kind.references:
        ref_id = values.get(ref.field)
        if ref_id is None:
            continue
        # A record found once stays found for the unit (a Bundle's entries name the same patient and enrolment).
        key = ("referenced record", ref.table.__name__, tenant_id, ref_id)
        if key not in known:
            target = session.exec(
                select(ref.table).where(col(ref.table.tenant_id) == tenant_id, col(ref.table.id) == ref_id)
            ).first()
            if target is None:
                raise invalid(ref.field, f"no {ref.label} with id {ref_id!r}")
            known[key] = getattr(target, "patient_id", None)
        if ref.same_patient and known[key] != values.get("patient_id"):
            raise invalid(ref.field, f"{ref.label} {ref_id!r} belongs to another patient")


def _columns(kind: StoredKind, payload: BaseModel) -> Columns:
    """The API shape as column values: JSON columns take JSON-ready values, the rest Python values."""
    python = payload.model_dump(exclude={"source", *kind.child_fields})
    as_json = payload.model_dump(mode="json", exclude={"source", *kind.child_fields})
    for name, column in kind.table.__table__.columns.items():  # type: ignore[attr-defined]
        if isinstance(column.type, JSON) and name in python:
            python[name] = as_json[name]
    return kind.to_columns(python)


def _public(session: Session, kind: StoredKind, rows: list[TenantRecord]) -> list[RecordMeta]:
    children = kind.load_children(session, rows) if kind.load_children is not None else {}
    meta_names = set(TenantRecord.model_fields)
    result: list[RecordMeta] = []
    for row in rows:
        columns = {k: v for k, v in row.model_dump().items() if k not in meta_names}
        values = {**kind.from_columns(columns), **children.get(row.id, {}), **record_meta(row)}
        result.append(kind.public_schema.model_validate(values))
    return result


def parse_date_bound(value: date | datetime | None) -> datetime | None:
    """Query bounds accept dates (midnight UTC) or instants."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=now_utc().tzinfo)
