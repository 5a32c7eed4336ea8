"""The resource types the facade serves: which record kind backs each, and how a sent resource becomes a record.

Writable types enter through the same store functions as the JSON API (scoring, plan status, audit, outbox).
Types derived from records (vital-sign Observations, Procedures, CarePlans) are read-only here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

import fhir_mappings as fm
from service import questionnaires
from service.audit_trail import RequestContext
from service.auth.principal import Role
from service.errors import FieldProblem, InvalidRequest, validation_problems
from service.record_store import kinds
from service.records.cbt import CbtSession, CbtSessionCreate
from service.records.ketamine import KetamineAdministrationCreate
from service.records.patient import Patient, PatientCreate

Inbound = Callable[[Session, RequestContext, dict[str, Any]], BaseModel]


@dataclass(frozen=True)
class FhirType:
    name: str
    kind: kinds.RecordKind | None  # the record kind whose records are this type's primary resources
    readers: frozenset[Role]
    inbound: Inbound | None = None  # None: read-only
    # DELETE marks the record entered-in-error (a correction that reaches the EHRs) and retracts its resources.
    correctable: bool = False
    # Fields this resource does not carry itself (they travel in its companion resources): a PUT of the
    # resource alone keeps their stored values instead of clearing them.
    carried_elsewhere: frozenset[str] = frozenset()

    @property
    def writable(self) -> bool:
        return self.inbound is not None and self.kind is not None


def patient_resolver(session: Session, tenant_id: str) -> Callable[[str], str | None]:
    """Literal Patient references (relative or absolute) to one of the tenant's patients, else None."""

    def resolve(reference: str) -> str | None:
        parts = reference.rstrip("/").split("/")
        if len(parts) < 2 or parts[-2] != "Patient":
            return None
        found = session.exec(
            select(Patient.id).where(col(Patient.tenant_id) == tenant_id, col(Patient.id) == parts[-1])
        )
        return found.first()

    return resolve


def _validated(model: type[BaseModel], body: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(validation_problems(error)) from None


def _mapped(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return build()
    except fm.MappingError as error:
        raise InvalidRequest([FieldProblem(error.location, error.message)]) from None


def _patient(session: Session, ctx: RequestContext, resource: dict[str, Any]) -> BaseModel:
    body = _mapped(lambda: fm.patient_from_fhir(resource, canonical_base=ctx.settings.canonical_base))
    return _validated(PatientCreate, body)


def _administration(session: Session, ctx: RequestContext, resource: dict[str, Any]) -> BaseModel:
    resolve = patient_resolver(session, ctx.tenant_id)
    body = _mapped(
        lambda: fm.administration_from_fhir(
            resource, canonical_base=ctx.settings.canonical_base, resolve_patient=resolve
        )
    )
    return _validated(KetamineAdministrationCreate, body)


def _encounter(session: Session, ctx: RequestContext, resource: dict[str, Any]) -> BaseModel:
    resolve = patient_resolver(session, ctx.tenant_id)
    body = _mapped(
        lambda: fm.session_from_fhir(
            resource,
            canonical_base=ctx.settings.canonical_base,
            resolve_patient=resolve,
            session_number=_next_session_number(session, ctx.tenant_id, resource, resolve),
        )
    )
    return _validated(CbtSessionCreate, body)


def _next_session_number(
    session: Session, tenant_id: str, encounter: dict[str, Any], resolve: Callable[[str], str | None]
) -> int:
    """An EHR-born visit carries no session number of ours: it becomes the patient's next one."""
    subject = encounter.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    patient_id = resolve(reference) if isinstance(reference, str) else None
    if patient_id is None:
        return 1
    count = session.exec(
        select(func.count())
        .select_from(CbtSession)
        .where(col(CbtSession.tenant_id) == tenant_id, col(CbtSession.patient_id) == patient_id)
    ).one()
    return int(count) + 1


CARE_TEAM = kinds.CARE_TEAM
FHIR_TYPES: dict[str, FhirType] = {
    t.name: t
    for t in (
        FhirType("Patient", kinds.PATIENTS, CARE_TEAM, _patient),
        FhirType(
            "MedicationAdministration",
            kinds.KETAMINE_ADMINISTRATIONS,
            CARE_TEAM,
            _administration,
            True,
            # The session's Observations (partOf the administration) carry these.
            frozenset({"vital_signs", "sedation_score", "dissociation_score", "adverse_events", "body_weight_kg"}),
        ),
        # The session's Procedure carries what was done in it.
        FhirType(
            "Encounter",
            kinds.CBT_SESSIONS,
            CARE_TEAM,
            _encounter,
            True,
            frozenset({"modules_covered", "homework_set", "homework_completed"}),
        ),
        FhirType(
            "QuestionnaireResponse", kinds.QUESTIONNAIRE_RESPONSES, CARE_TEAM, questionnaires.create_from_fhir, True
        ),
        FhirType("Observation", None, CARE_TEAM),
        FhirType("Procedure", None, CARE_TEAM),
        FhirType("CarePlan", None, CARE_TEAM),
        FhirType("Condition", None, CARE_TEAM),
        FhirType("Goal", None, CARE_TEAM),
        FhirType("Flag", None, CARE_TEAM),
    )
}
