"""The resource types the facade serves: which record kind backs each, and how a sent resource becomes a record.

Writable types are read by their one intake (service/intake) and enter through the same store functions as the
JSON API (scoring, plan status, audit, outbox).
Types derived from records (Procedures, CarePlans) are read-only here. Observation is written through its one
intake (service/intake/observation.py), which dispatches by kind: a score Observation becomes a questionnaire
response record and is served back as that record's total Observation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

import fhir_mappings as fm
from service.audit_trail import RequestContext
from service.auth.principal import Role
from service.errors import NotSupported
from service.intake import INTAKES, from_request, observation_role, writable_categories
from service.record_store import kinds
from service.records.base import ApiModel

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
    # What the CapabilityStatement says about the type beyond its interactions.
    documentation: str | None = None
    # A type whose resources are made from several record kinds (Observation): the kind a taken-in resource is
    # stored as, and the id of the resource that serves the stored record back. Create only: no update.
    stored_as: Callable[[BaseModel], kinds.RecordKind] | None = None
    served_as: Callable[[BaseModel, str], str] | None = None

    @property
    def writable(self) -> bool:
        return self.inbound is not None and (self.kind is not None or self.stored_as is not None)

    @property
    def updatable(self) -> bool:
        return self.writable and self.stored_as is None

    def record_kind(self, payload: BaseModel) -> kinds.RecordKind:
        if self.stored_as is not None:
            return self.stored_as(payload)
        assert self.kind is not None, "a writable type has a record kind"
        return self.kind

    def resource_id(self, payload: BaseModel, record_id: str) -> str:
        return self.served_as(payload, record_id) if self.served_as is not None else record_id


def _observation_kind(payload: BaseModel) -> kinds.RecordKind:
    """What a taken-in Observation is stored as: the kind its intake branch made a create request for (a score:
    a questionnaire response; a vital sign: a vital-sign record)."""
    kind = kinds.kind_of(payload) if isinstance(payload, ApiModel) else None
    if kind is None:
        raise NotSupported(f"an Observation read as {type(payload).__name__} cannot be stored here")
    return kind


def _observation_id(payload: BaseModel, record_id: str) -> str:
    """A score Observation is served as its record's total Observation (the id the client gets back); a vital
    sign as its record's own."""
    role = observation_role(payload)  # type: ignore[arg-type]
    return fm.resource_id(record_id) if role is None else fm.sub_resource_id(record_id, role)


CARE_TEAM = kinds.CARE_TEAM
FHIR_TYPES: dict[str, FhirType] = {
    t.name: t
    for t in (
        FhirType("Patient", kinds.PATIENTS, CARE_TEAM, from_request(INTAKES["Patient"])),
        FhirType(
            "MedicationAdministration",
            kinds.KETAMINE_ADMINISTRATIONS,
            CARE_TEAM,
            from_request(INTAKES["MedicationAdministration"]),
            True,
            # The session's Observations (partOf the administration) carry these.
            frozenset({"vital_signs", "sedation_score", "dissociation_score", "adverse_events", "body_weight_kg"}),
        ),
        # The session's Procedure carries what was done in it.
        FhirType(
            "Encounter",
            kinds.CBT_SESSIONS,
            CARE_TEAM,
            from_request(INTAKES["Encounter"]),
            True,
            frozenset({"modules_covered", "homework_set", "homework_completed"}),
        ),
        FhirType(
            "QuestionnaireResponse",
            kinds.QUESTIONNAIRE_RESPONSES,
            CARE_TEAM,
            from_request(INTAKES["QuestionnaireResponse"]),
            True,
        ),
        # An enrolment arrives as the referral it answers (fhir_mappings/referral.py): Epic lets a client create
        # and update ServiceRequest, but only reads EpisodeOfCare and CarePlan (docs/fhir.md, "Enrolment").
        FhirType(
            "ServiceRequest",
            kinds.ENROLLMENTS,
            CARE_TEAM,
            from_request(INTAKES["ServiceRequest"]),
            # A PUT changes the referral's status, dates and reason; the rest of the enrolment stays as stored.
            carried_elsewhere=frozenset(
                {"protocol_version", "coordinator_id", "target_condition", "treatment_resistant", "primary_instrument"}
            ),
            documentation="A referral to the ketamine/esketamine + CBT programme enrols the patient: POST with status "
            "active (intent order; the protocol named in instantiatesUri <base>/protocol/<id> or by an RxNorm drug "
            "code); PUT with status on-hold holds the enrolment, active resumes it, completed discharges it, revoked "
            "discontinues it (the reason from note). Served for every enrolment, with the CarePlan's id. "
            "EpisodeOfCare is not taken: Epic only reads it and Oracle Health does not offer it.",
        ),
        FhirType("Appointment", kinds.APPOINTMENTS, CARE_TEAM, from_request(INTAKES["Appointment"]), True),
        FhirType("Observation", None, CARE_TEAM),
        FhirType(
            "Observation",
            None,
            CARE_TEAM,
            from_request(INTAKES["Observation"]),
            stored_as=_observation_kind,
            served_as=_observation_id,
            # Which Observations a create takes; the others are refused (422), named by element.
            documentation="Create only (no update: POST the corrected Observation). Writable: "
            f"{writable_categories()}. Other categories are refused.",
        ),
        FhirType("Procedure", None, CARE_TEAM),
        FhirType("CarePlan", None, CARE_TEAM),
        FhirType("Condition", None, CARE_TEAM),
        FhirType("Goal", None, CARE_TEAM),
        FhirType("Flag", None, CARE_TEAM),
    )
}
