"""Our records as the FHIR resources a target gets: the reader (row -> Public model, with what its derived
resources carry) and the variant of the record⇄FHIR table (service/record_fhir.py) the target's capabilities chose."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import Session, col, func, select

import fhir_mappings as fm
from service.caseload.tables import PlanStatusRow
from service.db.unit_of_work import write_inserts
from service.errors import invalid
from service.projection.tables import FhirResourceVersion
from service.record_fhir import KIND_FHIR, NO_CONTEXT, PlanContext, kind_fhir
from service.record_store import store
from service.record_store.kinds import RECORD_KINDS, RecordKind
from service.records.base import RecordMeta
from service.sync.capabilities import KindDecision, Strategy

KINDS_BY_PATH: dict[str, RecordKind] = {kind.path: kind for kind in RECORD_KINDS}
# What an outbox row of each kind names: its own records, or another kind's (an enrollment's urgent findings).
RECORDS_OF: dict[str, RecordKind] = {
    entry.kind.value: KINDS_BY_PATH[entry.records.value] for entry in KIND_FHIR.values()
}


def public_record(session: Session, tenant_id: str, kind_path: str, record_id: str) -> RecordMeta | None:
    """The record's API shape as stored now, or None when it is gone. A kind that is not a record kind (sent to a
    dry run) is refused by name."""
    if kind_path not in RECORDS_OF:
        raise invalid("record_kind", f"{kind_path!r} is not a record kind: one of {', '.join(RECORDS_OF)}")
    return public_records(session, tenant_id, kind_path, [record_id]).get(record_id)


def public_records(session: Session, tenant_id: str, kind_path: str, record_ids: list[str]) -> dict[str, RecordMeta]:
    """The records' API shapes as stored now, by id; a record that is gone is absent."""
    kind = RECORDS_OF[kind_path]
    rows = session.exec(
        select(kind.table).where(col(kind.table.tenant_id) == tenant_id, col(kind.table.id).in_(set(record_ids)))
    ).all()
    return {record.id: record for record in store.public_records(session, kind, list(rows))}


def patient_of(kind_path: str, record: RecordMeta) -> str | None:
    """The patient a record is about (a patient's record is itself), None for a kind not about a patient."""
    kind = RECORDS_OF[kind_path]
    return getattr(record, "patient_id", record.id) if kind.patient_scoped else None


@dataclass
class PlannedResource:
    role: str  # "main" for the record's own resource, else the mapping's role ("procedure", "vitals-0-bp", ...)
    resource_type: str
    local_id: str  # the id our mapping gives it
    identifier_system: str
    identifier_value: str
    strategy: Strategy
    body: dict[str, Any]

    @property
    def local_reference(self) -> str:
        return f"{self.resource_type}/{self.local_id}"

    @property
    def identifier_query(self) -> str:
        return f"{self.identifier_system}|{self.identifier_value}"


def mapped_resources(
    record: RecordMeta,
    kind_path: str,
    decision: KindDecision,
    *,
    canonical_base: str,
    context: PlanContext = NO_CONTEXT,
) -> list[dict[str, Any]]:
    """The resources of one record in delivery order (the record's own resource first): the decided variant."""
    if decision.variant is None:
        raise ValueError(f"{kind_path} are not sent to this target: {decision.reason}")
    return decision.variant.build(record, canonical_base, context, decision.sent_types)


def plan_contexts(session: Session, tenant_id: str, kind_path: str, record_ids: list[str]) -> dict[str, PlanContext]:
    """What the records' derived resources carry as stored now (an enrollment's plan status), by record id; empty
    for a kind whose resources carry nothing beyond the record. A kind sent from the plan (urgent findings) gets the
    resource types of the records its findings cite, to name them."""
    table = kind_fhir(kind_path)
    if table is None or not table.carries_plan:
        return {}
    rows = session.exec(
        select(PlanStatusRow).where(
            col(PlanStatusRow.tenant_id) == tenant_id, col(PlanStatusRow.enrollment_id).in_(set(record_ids))
        )
    ).all()
    if table.of is None:
        return {row.enrollment_id: PlanContext.of(row) for row in rows}
    contexts = {row.enrollment_id: PlanContext.of(row) for row in rows}
    cited = {i for c in contexts.values() if c.plan for r in c.plan.reasons for i in r.record_ids}
    evidence = _published_types(session, tenant_id, cited)
    return {rid: replace(c, evidence=evidence) for rid, c in contexts.items()}


def _published_types(session: Session, tenant_id: str, record_ids: set[str]) -> dict[str, str]:
    """record id -> the resource type the record is published as (its own resource), for the ids given."""
    if not record_ids:
        return {}
    r = FhirResourceVersion
    rows = session.exec(
        select(r.resource_id, r.resource_type).where(
            col(r.tenant_id) == tenant_id,
            col(r.resource_id).in_(record_ids),
            col(r.is_current).is_(True),
            col(r.resource_type).in_(["QuestionnaireResponse", "MedicationAdministration", "Encounter"]),
        )
    ).all()
    return {resource_id: resource_type for resource_id, resource_type in rows}


def derived_versions(session: Session, tenant_id: str, kind_path: str, record_ids: list[str]) -> dict[str, int]:
    """The version an EHR's copy is judged by, for a kind whose resources carry derived data: the version of its
    projected main resource (an enrollment's CarePlan), which moves with the record and with its plan status, so a
    status that changed is sent although the record did not. A kind sent from an enrollment's plan (urgent findings)
    is judged by the sum of the versions of the enrollment's resources it follows (its Flags): it moves whenever one
    of them changed or appeared. Empty for other kinds (their record version)."""
    table = kind_fhir(kind_path)
    if table is None or not table.carries_plan:
        return {}
    write_inserts(session)
    r = FhirResourceVersion
    rows = session.exec(
        select(r.record_id, func.sum(r.version_id))
        .where(
            col(r.tenant_id) == tenant_id,
            col(r.record_kind) == table.records,
            col(r.record_id).in_(set(record_ids)),
            col(r.resource_type).in_(table.versioned_by or {table.fhir_type}),
            col(r.is_current).is_(True),
        )
        .group_by(col(r.record_id))
    ).all()
    found = {record_id: int(version) for record_id, version in rows}
    if table.of is None:
        return found
    return {record_id: found.get(record_id, 0) for record_id in record_ids}  # not the enrollment's own version


def plan_resources(
    record: RecordMeta,
    kind_path: str,
    decision: KindDecision,
    *,
    canonical_base: str,
    code_map: dict[str, Any],
    context: PlanContext = NO_CONTEXT,
) -> list[PlannedResource]:
    planned = []
    for rendered in mapped_resources(record, kind_path, decision, canonical_base=canonical_base, context=context):
        body = fm.for_ehr(rendered, canonical_base)  # ours in identifier: how the EHR's copy is found again
        identifier = body["identifier"]
        ours = identifier if isinstance(identifier, dict) else identifier[0]
        value = str(ours["value"])
        role = value.split("/", 1)[1] if "/" in value else "main"
        resource_type = str(body["resourceType"])
        if resource_type == "Observation" and code_map:
            add_site_codings(body, code_map)
        planned.append(
            PlannedResource(
                role=role,
                resource_type=resource_type,
                local_id=str(body["id"]),
                identifier_system=str(ours["system"]),
                identifier_value=value,
                strategy=decision.strategies[resource_type],
                body=body,
            )
        )
    return planned


def add_site_codings(observation: dict[str, Any], code_map: dict[str, Any]) -> None:
    """Extra codings a site requires (the target's code_map, keyed by our system|code) on code and components."""
    concepts = [observation.get("code")] + [c.get("code") for c in observation.get("component") or []]
    for concept in concepts:
        if not isinstance(concept, dict):
            continue
        codings = concept.setdefault("coding", [])
        present = {(c.get("system"), c.get("code")) for c in codings}
        for coding in list(codings):
            for extra in code_map.get(f"{coding.get('system')}|{coding.get('code')}", []):
                extra = {k: v for k, v in dict(extra).items() if v is not None}
                if (extra.get("system"), extra.get("code")) not in present:
                    codings.append(extra)
                    present.add((extra.get("system"), extra.get("code")))


def references_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                found.add(item)
            else:
                found |= references_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= references_in(item)
    return found


def rewrite_references(value: Any, known: dict[str, str]) -> Any:
    """A copy with our references ("Patient/<our id>") replaced by the target's ("Patient/<their id>")."""
    if isinstance(value, dict):
        return {
            k: (known.get(v, v) if k == "reference" and isinstance(v, str) else rewrite_references(v, known))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [rewrite_references(v, known) for v in value]
    return value
