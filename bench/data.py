"""Benchmark data from the seeded demo generator (service/demo.py), loaded two ways.

- `store_load`: through the real write path (`store.create_record`: validation, derivation, projection, plan
  status, audit, outbox) — used where the write path is what is measured or must be exact (push, bundle setup).
- `bulk_load`: the same generated records turned into rows by the store's own column code (`kind.derive`,
  the same scoring and protocol pinning) and the FHIR projection by the same mappings (`resources_of`), then
  inserted with multi-row INSERTs, without per-record side effects (no plan status, audit or outbox rows).
  Used only where the benchmark measures reads (search, caseload) or recomputes from the stored records.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert
from sqlmodel import Session

from bench.common import ANCHOR_END, SEED, Database
from service.audit_trail import RequestContext
from service.auth.principal import Principal
from service.clock import now_utc
from service.db.unit_of_work import unit_of_work
from service.demo import DemoPatient, DemoTenant, generate_demo_tenant
from service.demo_loader import _kind_of
from service.projection.tables import FhirResourceVersion, FhirSearchToken
from service.projection.writes import _clinical_date, _tokens
from service.record_fhir import Kind, resources_of
from service.record_store import store
from service.record_store.kinds import ENROLLMENTS, PATIENTS, PRACTITIONERS, RecordKind
from service.records.base import TenantRecord, record_meta
from service.records.patient import PatientIdentifier


@cache
def demo(patients: int) -> DemoTenant:
    """The generated tenant (cached: both databases get the very same records)."""
    return generate_demo_tenant(seed=SEED, patients=patients, now=ANCHOR_END)


def context(tenant_id: str, db: Database, request_id: str = "bench") -> RequestContext:
    principal = Principal(subject="bench-loader", tenant_id=tenant_id, role="ehr-system", scopes=frozenset())
    return RequestContext(principal=principal, request_id=request_id, settings=db.settings())


@dataclass
class Loaded:
    practitioners: list[str] = field(default_factory=list)
    coordinators: list[str] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)  # by demo patient index
    enrollments: list[str] = field(default_factory=list)
    records: int = 0
    observations: int = 0


# ---- through the write path --------------------------------------------------------------------------------


def store_load(
    db: Database, tenant_id: str, patients: Iterable[DemoPatient], practitioners: Iterable[BaseModel], *, records: bool
) -> Loaded:
    """Practitioners, patients and enrollments (and, with records=True, every clinical record) via the store."""
    loaded = Loaded()
    ctx_settings = db.settings()

    def write(session: Session, kind: RecordKind, payload: BaseModel) -> str:
        ctx = RequestContext(
            principal=Principal(subject="bench-loader", tenant_id=tenant_id, role="ehr-system", scopes=frozenset()),
            request_id="bench-load",
            settings=ctx_settings,
        )
        public, _ = store.create_record(session, ctx, kind, payload)
        loaded.records += 1
        return public.id

    with unit_of_work(db.engine) as session:  # as a request would: the store never commits
        for practitioner in practitioners:
            pid = write(session, PRACTITIONERS, practitioner)
            loaded.practitioners.append(pid)
            if getattr(practitioner, "role", None) == "coordinator":
                loaded.coordinators.append(pid)
        for n, patient in enumerate(patients):
            patient_id = write(session, PATIENTS, patient.patient)
            coordinator = loaded.coordinators[n % len(loaded.coordinators)] if loaded.coordinators else None
            enrollment = patient.enrollment.model_copy(update={"patient_id": patient_id, "coordinator_id": coordinator})
            enrollment_id = write(session, ENROLLMENTS, enrollment)
            loaded.patients.append(patient_id)
            loaded.enrollments.append(enrollment_id)
            if records:
                for record in patient.records:
                    linked = record.model_copy(update={"patient_id": patient_id, "enrollment_id": enrollment_id})
                    write(session, _kind_of(record), linked)
    return loaded


# ---- bulk (reads only) ---------------------------------------------------------------------------------------


def make_row(session: Session, ctx: RequestContext, kind: RecordKind, payload: BaseModel) -> TenantRecord:
    """The row `store.create_record` would insert (same column derivation), without inserting it."""
    columns = kind.derive(session, ctx, store._columns(kind, payload))
    source = payload.source  # type: ignore[attr-defined]
    return kind.table(tenant_id=ctx.tenant_id, source_system=source.system, source_id=source.value, **columns)


def public_of(kind: RecordKind, row: TenantRecord, children: dict[str, Any] | None = None) -> Any:
    """The API shape of a row not yet read back (what the projection maps), as `store._public` builds it."""
    meta_names = set(TenantRecord.model_fields)
    columns = {k: v for k, v in row.model_dump().items() if k not in meta_names}
    values = {**kind.from_columns(columns), **(children or {}), **record_meta(row)}
    return kind.public_schema.model_validate(values)


def projection_rows(
    tenant_id: str, kind: RecordKind, row: TenantRecord, resources: list[dict[str, Any]], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """fhir_resources and fhir_search_tokens rows as `projection.project` writes them for a first version."""
    versions, tokens = [], []
    for resource in resources:
        body = {**resource, "meta": {**resource.get("meta", {}), "versionId": "1", "lastUpdated": now.isoformat()}}
        clinical_date = _clinical_date(body)
        versions.append(
            {
                "tenant_id": tenant_id,
                "resource_type": body["resourceType"],
                "resource_id": body["id"],
                "version_id": 1,
                "is_current": True,
                "deleted": False,
                "last_updated": now,
                "patient_id": kind.patient_of(row),
                "record_kind": kind.path,
                "record_id": row.id,
                "clinical_date": clinical_date,
                "status": body.get("status"),
                "body": body,
            }
        )
        tokens += [
            {
                "tenant_id": tenant_id,
                "resource_type": body["resourceType"],
                "resource_id": body["id"],
                "param": param,
                "system": system,
                "value": value,
                "patient_id": kind.patient_of(row),
                "clinical_date": clinical_date,
                "last_updated": now,
            }
            for param, system, value in _tokens(body)
        ]
    return versions, tokens


# Mapping every record to FHIR costs ~2 ms per resource (fhir.resources validation and serialisation); past
# the first TEMPLATES patients the projection of patient n is that of patient n % TEMPLATES (same point of the
# programme, same kinds of records) with the ids replaced: the same shapes, dates and codes, at a fraction of
# the load time. Only the search benchmark reads these rows.
TEMPLATES = 50
Template = tuple[str, list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]]


def clone_projection(
    template: Template, patient_id: str
) -> list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    old_patient, records = template
    out = []
    for old_record, versions, tokens in records:
        new_record = str(uuid.uuid4())
        ids = {old_record: new_record, old_patient: patient_id}
        ids |= {v["resource_id"]: str(uuid.uuid4()) for v in versions if v["resource_id"] not in ids}

        def swap(text: str) -> str:
            for old, new in ids.items():  # noqa: B023
                text = text.replace(old, new)
            return text

        cloned_versions = []
        for v in versions:
            cloned = dict(v)
            cloned["resource_id"] = swap(v["resource_id"])
            cloned["record_id"] = new_record
            cloned["patient_id"] = patient_id
            cloned["body"] = json.loads(swap(json.dumps(v["body"])))
            cloned_versions.append(cloned)
        cloned_tokens = [
            {**t, "resource_id": swap(t["resource_id"]), "value": swap(t["value"]), "patient_id": patient_id}
            for t in tokens
        ]
        out.append((new_record, cloned_versions, cloned_tokens))
    return out


def bulk_load(
    db: Database,
    tenant_id: str,
    tenant: DemoTenant,
    *,
    observation_limit: int | None = None,
    chunk: int = 250,
    progress: Any = None,
) -> Loaded:
    """Every generated record of `tenant` as rows; FHIR projection rows for the clinical records until
    `observation_limit` Observations are projected (None: no projection)."""
    loaded = Loaded()
    ctx = context(tenant_id, db)
    base = db.settings().canonical_base
    templates: dict[int, Template] = {}
    now = now_utc()
    with Session(db.engine, expire_on_commit=False) as session:
        for practitioner in tenant.practitioners:
            row = make_row(session, ctx, PRACTITIONERS, practitioner)
            session.add(row)
            loaded.practitioners.append(row.id)
            if practitioner.role == "coordinator":
                loaded.coordinators.append(row.id)
        session.commit()
        for start in range(0, len(tenant.patients), chunk):
            versions: list[dict[str, Any]] = []
            tokens: list[dict[str, Any]] = []
            patient_rows, identifiers, enrollment_rows, record_rows = [], [], [], []
            with session.no_autoflush:
                for n, patient in enumerate(tenant.patients[start : start + chunk], start):
                    prow = make_row(session, ctx, PATIENTS, patient.patient)
                    patient_rows.append(prow)
                    identifiers += [
                        PatientIdentifier(tenant_id=tenant_id, patient_id=prow.id, system=i.system, value=i.value)
                        for i in patient.patient.identifiers
                    ]
                    coordinator = loaded.coordinators[n % len(loaded.coordinators)]
                    enrollment = patient.enrollment.model_copy(
                        update={"patient_id": prow.id, "coordinator_id": coordinator}
                    )
                    erow = make_row(session, ctx, ENROLLMENTS, enrollment)
                    enrollment_rows.append(erow)
                    loaded.patients.append(prow.id)
                    loaded.enrollments.append(erow.id)
                    project = observation_limit is not None and loaded.observations < observation_limit
                    template = templates.get(n % TEMPLATES) if project else None
                    mine: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = []
                    for record in patient.records:
                        kind = _kind_of(record)
                        linked = record.model_copy(update={"patient_id": prow.id, "enrollment_id": erow.id})
                        row = make_row(session, ctx, kind, linked)
                        record_rows.append(row)
                        if project and template is None:
                            resources = resources_of(Kind(kind.path), public_of(kind, row), base)
                            v, t = projection_rows(tenant_id, kind, row, resources, now)
                            mine.append((row.id, v, t))
                    if template is not None:
                        mine = clone_projection(template, prow.id)
                    elif project:
                        templates[n % TEMPLATES] = (prow.id, mine)
                    for _, v, t in mine:
                        versions += v
                        tokens += t
                        loaded.observations += sum(r["resource_type"] == "Observation" for r in v)
            loaded.records += len(patient_rows) + len(enrollment_rows) + len(record_rows)
            for stage in (patient_rows, identifiers, enrollment_rows, record_rows):
                session.add_all(stage)
                session.flush()
            session.flush()
            for part in range(0, len(versions), 2000):
                session.execute(insert(FhirResourceVersion), versions[part : part + 2000])
            for part in range(0, len(tokens), 5000):
                session.execute(insert(FhirSearchToken), tokens[part : part + 5000])
            session.commit()
            if progress:
                progress(start + chunk)
    return loaded


def new_source(prefix: str) -> dict[str, str]:
    return {"system": f"urn:tandem:bench:{prefix}", "value": uuid.uuid4().hex}
