"""Our records as the FHIR resources a target gets: the reader (row -> Public model) and the per-kind mapping
chosen by the target's capabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlmodel import Session, col, select

import fhir_mappings as fm
from service.instruments import INSTRUMENTS
from service.record_store import store
from service.record_store.kinds import RECORD_KINDS, RecordKind
from service.records.base import RecordMeta
from service.sync.capabilities import KindDecision, Strategy

KINDS_BY_PATH: dict[str, RecordKind] = {kind.path: kind for kind in RECORD_KINDS}


def public_record(session: Session, tenant_id: str, kind_path: str, record_id: str) -> RecordMeta | None:
    """The record's API shape as stored now, or None when it is gone."""
    return public_records(session, tenant_id, kind_path, [record_id]).get(record_id)


def public_records(session: Session, tenant_id: str, kind_path: str, record_ids: list[str]) -> dict[str, RecordMeta]:
    """The records' API shapes as stored now, by id; a record that is gone is absent."""
    kind = KINDS_BY_PATH[kind_path]
    rows = session.exec(
        select(kind.table).where(col(kind.table.tenant_id) == tenant_id, col(kind.table.id).in_(set(record_ids)))
    ).all()
    return {record.id: record for record in store.public_records(session, kind, list(rows))}


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
    record: RecordMeta, kind_path: str, decision: KindDecision, *, canonical_base: str
) -> list[dict[str, Any]]:
    """The resources of one record in delivery order (the record's own resource first)."""
    base = canonical_base
    mapping = decision.mapping
    resources: list[Any]
    if kind_path == "patients":
        resources = [fm.patient_resource(cast(fm.PatientRecord, record), canonical_base=base)]
    elif kind_path == "enrollments":
        plan = fm.care_plan_resources(cast(fm.EnrollmentRecord, record), canonical_base=base)
        if "Goal" not in decision.strategies:
            care_plan = fm.to_json(plan.care_plan)
            care_plan.pop("goal", None)
            return [care_plan, fm.to_json(plan.condition)]
        resources = plan.all()
    elif kind_path == "ketamine-administrations":
        given = cast(fm.KetamineAdministrationRecord, record)
        build = fm.administration_resources if mapping == "natural" else fm.administration_fallback
        resources = build(given, canonical_base=base).all()
    elif kind_path == "cbt-sessions":
        session_resources = fm.session_resources(cast(fm.CbtSessionRecord, record), canonical_base=base)
        if mapping == "natural":
            resources = session_resources.all()
        else:
            procedure = fm.to_json(session_resources.procedure)
            procedure.pop("encounter", None)
            return [procedure]
    elif kind_path == "questionnaire-responses":
        response = cast(fm.QuestionnaireResponseRecord, record)
        instrument = INSTRUMENTS.get(response.instrument)
        built = fm.response_resources(
            response,
            canonical_base=base,
            score=getattr(record, "score", None),
            total_loinc=instrument.total_loinc if instrument else None,
        )
        if mapping == "natural":
            resources = [built.response, *(built.observations if "Observation" in decision.strategies else ())]
        else:
            resources = list(built.observations)
    else:
        raise ValueError(f"{kind_path} are not sent to EHRs")
    return [fm.to_json(r) for r in resources]


def plan_resources(
    record: RecordMeta, kind_path: str, decision: KindDecision, *, canonical_base: str, code_map: dict[str, Any]
) -> list[PlannedResource]:
    planned = []
    for body in mapped_resources(record, kind_path, decision, canonical_base=canonical_base):
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
