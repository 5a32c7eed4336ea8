"""One record⇄FHIR table: for each record kind, the FHIR resources it is served as and sent to EHRs as.

The facade's projection, the push to EHRs, the pull and the capability decisions all read `KIND_FHIR`, so what a
kind is published as and what an EHR receives cannot drift apart: the natural variant sent to an EHR is the
facade's rendering, restricted to the types that target takes. A fallback (an EHR refusing the natural types)
is its own, explicit variant. Kinds are `Kind` members, never names compared in place.

Pure: the mappings are fhir_mappings'; what a derived resource carries beyond its record (an enrollment's
computed plan status) comes in as a `PlanContext` the caller read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, cast

import fhir_mappings as fm
from fhir_mappings.definitions import PLAN_STATUS_REASON
from service.caseload.tables import PlanStatusRow
from service.instruments import INSTRUMENTS
from service.plan_status import PlanStatus
from service.plan_status.progress_note import progress_note_lines
from service.records.base import RecordMeta

FhirJson = dict[str, Any]


class Kind(StrEnum):
    """The clinical record kinds. The value is the kind's URL path segment, and what outbox, projection and audit
    rows store as the record kind."""

    PATIENTS = "patients"
    PRACTITIONERS = "practitioners"
    ENROLLMENTS = "enrollments"
    KETAMINE_ADMINISTRATIONS = "ketamine-administrations"
    CBT_SESSIONS = "cbt-sessions"
    QUESTIONNAIRE_RESPONSES = "questionnaire-responses"
    APPOINTMENTS = "appointments"
    VITAL_SIGNS = "vital-signs"
    # Sent to EHRs from an enrollment's plan status, not records of their own (their records are enrollments): a
    # message to the care team per urgent finding, and the plan's progress note.
    URGENT_FINDINGS = "urgent-findings"
    PROGRESS_NOTES = "progress-notes"


@dataclass(frozen=True)
class PlanContext:
    """What a derived resource carries beyond its record: an enrollment's computed plan status and progress, and,
    for its Flags, the resource type of each record the status cites (record id -> type)."""

    status: str | None = None
    reasons: tuple[str, ...] = ()
    plan: PlanStatus | None = None
    evidence: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, row: PlanStatusRow | None, evidence: Mapping[str, str] | None = None) -> PlanContext:
        if row is None:
            return cls(evidence=evidence or {})
        reasons = tuple(sorted(code for code in row.open_flags.split(",") if code))
        return cls(row.status, reasons, PlanStatus.model_validate(row.detail), evidence or {})


NO_CONTEXT = PlanContext()
# Each plan-status reason code's label, as our CodeSystem publishes it (the progress note names warnings by it).
REASON_WORDS: dict[str, str] = dict(PLAN_STATUS_REASON.concepts)
VariantName = Literal["natural", "fallback"]
Render = Callable[[RecordMeta, str, PlanContext], list[FhirJson]]
# record, canonical base, context, the types the target takes among the variant's -> the resources, own first
Build = Callable[[RecordMeta, str, PlanContext, frozenset[str]], list[FhirJson]]


@dataclass(frozen=True)
class Variant:
    """One way of sending a kind to an EHR, and what a target must write idempotently to take it."""

    name: VariantName
    required: tuple[str, ...]
    build: Build
    optional: tuple[str, ...] = ()  # sent where the target takes them, else left out
    description: str = ""  # what a fallback sends instead, for the decision's reason


@dataclass(frozen=True)
class KindFhir:
    kind: Kind
    fhir_type: str  # the record's own resource: SMART scopes name it, references point at it
    render: Render  # every resource the facade serves for a record, its own first
    natural: Variant | None = None  # None: not sent to EHRs
    fallback: Variant | None = None
    # Projected by the plan refresh, with the computed status, rather than when the record is written.
    derived: bool = False
    # Sent from another kind's records (an enrollment's urgent findings): that kind, and the types of its projected
    # resources whose versions add up to this kind's version (it is sent again when one of them changed).
    of: Kind | None = None
    versioned_by: frozenset[str] = frozenset()

    @property
    def records(self) -> Kind:
        """The kind whose records this kind's outbox rows name."""
        return self.of or self.kind

    @property
    def carries_plan(self) -> bool:
        """Its resources carry the enrollment's computed plan status (read as a PlanContext when sent)."""
        return self.derived or self.of is not None


@dataclass(frozen=True)
class PullSource:
    """A search the pull runs at a target (its name is what a target's `pull` list holds) and the kind its
    resources become."""

    name: str
    fhir_type: str
    kind: Kind
    search: tuple[tuple[str, str], ...] = ()  # fixed search parameters
    by_mrn: bool = False  # searched by the target's MRN system: identifier=<system>|
    # The search parameter naming the patient, for a patient-scoped pull (Oracle requires one on clinical searches).
    patient_param: str | None = None


# ---- renderings -------------------------------------------------------------------------------------------------


def _patient(record: RecordMeta, base: str, context: PlanContext) -> list[FhirJson]:
    return [fm.to_json(fm.patient_resource(cast(fm.PatientRecord, record), canonical_base=base))]


def _nothing(record: RecordMeta, base: str, context: PlanContext) -> list[FhirJson]:
    return []  # practitioners are referred to, not published


def _care_plan(record: RecordMeta, base: str, context: PlanContext) -> fm.CarePlanResources:
    return fm.care_plan_resources(
        cast(fm.EnrollmentRecord, record),
        canonical_base=base,
        plan_status=context.status,
        plan_status_reasons=context.reasons,
        goal_achievement=_goal_achievement(context.plan),
        progress=_progress(context.plan),
    )


def _enrollment(record: RecordMeta, base: str, context: PlanContext) -> list[FhirJson]:
    plan = _care_plan(record, base, context)
    # The referral it answers is served too (same id as the CarePlan): what an EHR reads back and PUTs to hold,
    # resume or discharge. It is not sent to EHRs: they hold their own.
    referral = fm.referral_resource(cast(fm.EnrollmentRecord, record), canonical_base=base)
    return [*(fm.to_json(r) for r in plan.all()), fm.to_json(referral), *_safety_flags(record.id, context, base)]


def _administration(record: RecordMeta, base: str, context: PlanContext) -> list[FhirJson]:
    mapped = fm.administration_resources(cast(fm.KetamineAdministrationRecord, record), canonical_base=base)
    return [fm.to_json(r) for r in mapped.all()]


def _cbt_session(record: RecordMeta, base: str, context: PlanContext) -> list[FhirJson]:
    mapped = fm.session_resources(cast(fm.CbtSessionRecord, record), canonical_base=base)
    return [fm.to_json(r) for r in mapped.all()]


def _appointment(record: RecordMeta, base: str, context: PlanContext) -> list[FhirJson]:
    return [fm.to_json(fm.appointment_resource(cast(fm.AppointmentRecord, record), canonical_base=base))]


def _response(record: RecordMeta, base: str) -> fm.ResponseResources:
    response = cast(fm.QuestionnaireResponseRecord, record)
    instrument = INSTRUMENTS.get(response.instrument)
    return fm.response_resources(
        response,
        canonical_base=base,
        score=getattr(record, "score", None),
        total_loinc=instrument.total_loinc if instrument else None,
    )


def _questionnaire_response(record: RecordMeta, base: str, context: PlanContext) -> list[FhirJson]:
    return [fm.to_json(r) for r in _response(record, base).all()]


def _vital_sign(record: RecordMeta, base: str, context: PlanContext) -> list[FhirJson]:
    return [fm.to_json(fm.vital_sign_resource(cast(fm.VitalSignRecord, record), canonical_base=base))]


# ---- what EHRs are sent -----------------------------------------------------------------------------------------


def _facade_types(render: Render) -> Build:
    """The natural variant: the facade's own rendering, of the types the target takes. A reference to one of the
    record's resources left out (a CarePlan's Goal) is dropped with it."""

    def build(record: RecordMeta, base: str, context: PlanContext, sent: frozenset[str]) -> list[FhirJson]:
        rendered = render(record, base, context)
        left_out = {f"{r['resourceType']}/{r['id']}" for r in rendered if r["resourceType"] not in sent}
        return [_without_references(r, left_out) for r in rendered if r["resourceType"] in sent]

    return build


def _without_references(resource: FhirJson, left_out: set[str]) -> FhirJson:
    if not left_out:
        return resource
    kept: FhirJson = {}
    for name, value in resource.items():
        if isinstance(value, dict) and value.get("reference") in left_out:
            continue
        if isinstance(value, list) and any(isinstance(v, dict) and v.get("reference") in left_out for v in value):
            value = [v for v in value if not (isinstance(v, dict) and v.get("reference") in left_out)]
            if not value:
                continue
        kept[name] = value
    return kept


def _administration_as_procedure(
    record: RecordMeta, base: str, context: PlanContext, sent: frozenset[str]
) -> list[FhirJson]:
    mapped = fm.administration_fallback(cast(fm.KetamineAdministrationRecord, record), canonical_base=base)
    return [fm.to_json(r) for r in mapped.all()]


def _urgent_messages(record: RecordMeta, base: str, context: PlanContext, sent: frozenset[str]) -> list[FhirJson]:
    """One Communication per occurrence of an urgent finding, to the enrollment's coordinator where known; with the
    Flags too where the target takes them."""
    status = context.plan
    if status is None:
        return []
    coordinator = cast(fm.EnrollmentRecord, record).coordinator_id
    messages = [
        fm.to_json(
            fm.urgent_finding_message(
                canonical_base=base,
                enrollment_id=record.id,
                patient_id=status.patient_id,
                code=reason.code,
                occurrence_id=reason.occurrence_id,
                message=reason.message,
                since=reason.since,
                closed=not reason.open,
                evidence=[f"{context.evidence[i]}/{i}" for i in reason.record_ids if i in context.evidence],
                care_team=[coordinator] if coordinator else [],
            )
        )
        for reason in status.reasons
        if reason.severity == "urgent"
    ]
    return messages + (_urgent_flags(record, base, context, sent) if "Flag" in sent else [])


def _urgent_flags(record: RecordMeta, base: str, context: PlanContext, sent: frozenset[str]) -> list[FhirJson]:
    return _safety_flags(record.id, context, base)


def _progress_note(record: RecordMeta, base: str, context: PlanContext, sent: frozenset[str]) -> list[FhirJson]:
    status = context.plan
    if status is None:
        return []
    note = fm.progress_note_resource(
        canonical_base=base,
        enrollment_id=record.id,
        patient_id=status.patient_id,
        lines=progress_note_lines(status, REASON_WORDS),
    )
    return [fm.to_json(note)]


def _scores_only(record: RecordMeta, base: str, context: PlanContext, sent: frozenset[str]) -> list[FhirJson]:
    return [fm.to_json(o) for o in _response(record, base).observations]


KIND_FHIR: dict[Kind, KindFhir] = {
    entry.kind: entry
    for entry in (
        KindFhir(
            Kind.PATIENTS,
            "Patient",
            _patient,
            natural=Variant("natural", ("Patient",), _facade_types(_patient)),
        ),
        KindFhir(Kind.PRACTITIONERS, "Practitioner", _nothing),
        KindFhir(
            Kind.ENROLLMENTS,
            "CarePlan",
            _enrollment,
            # Flags stay on the facade. Without Goal writes the CarePlan goes without its `goal` reference (Goal
            # is optional on a CarePlan).
            natural=Variant("natural", ("CarePlan", "Condition"), _facade_types(_enrollment), optional=("Goal",)),
            derived=True,
        ),
        KindFhir(
            Kind.KETAMINE_ADMINISTRATIONS,
            "MedicationAdministration",
            _administration,
            natural=Variant("natural", ("MedicationAdministration", "Observation"), _facade_types(_administration)),
            fallback=Variant(
                "fallback",
                ("Procedure", "Observation"),
                _administration_as_procedure,
                description="a Procedure 'administration of drug' (SNOMED 18629005) with the same Observations",
            ),
        ),
        KindFhir(
            Kind.CBT_SESSIONS,
            "Encounter",
            _cbt_session,
            natural=Variant("natural", ("Encounter", "Procedure"), _facade_types(_cbt_session)),
            fallback=Variant(
                "fallback",
                ("Procedure",),
                _facade_types(_cbt_session),
                description="the psychotherapy Procedure alone, without its Encounter",
            ),
        ),
        KindFhir(
            Kind.QUESTIONNAIRE_RESPONSES,
            "QuestionnaireResponse",
            _questionnaire_response,
            natural=Variant(
                "natural",
                ("QuestionnaireResponse",),
                _facade_types(_questionnaire_response),
                optional=("Observation",),
            ),
            fallback=Variant(
                "fallback",
                ("Observation",),
                _scores_only,
                description="the score as Observations only (total and safety items), without the answers",
            ),
        ),
        # Sent where the target creates Appointments idempotently (Oracle Health creates them but cannot search them
        # by identifier, so the decision there is not_supported, with that reason; Epic only reads them).
        KindFhir(
            Kind.APPOINTMENTS,
            "Appointment",
            _appointment,
            natural=Variant("natural", ("Appointment",), _facade_types(_appointment)),
        ),
        # Not sent to EHRs: they come from there (a flowsheet row), and the EHR keeps its own.
        KindFhir(Kind.VITAL_SIGNS, "Observation", _vital_sign),
        # An enrollment's urgent findings: an in-basket message each (Epic creates Communications), with the Flags
        # where the EHR takes them too; Flags alone where it takes no Communication. Not served by the facade (the
        # Flags are, with the CarePlan).
        KindFhir(
            Kind.URGENT_FINDINGS,
            "Communication",
            _nothing,
            natural=Variant("natural", ("Communication",), _urgent_messages, optional=("Flag",)),
            fallback=Variant(
                "fallback",
                ("Flag",),
                _urgent_flags,
                description="each urgent finding as a Flag (active while open, inactive once acknowledged)",
            ),
            of=Kind.ENROLLMENTS,
            versioned_by=frozenset({"Flag"}),
        ),
        # An enrollment's progress note (Epic and Oracle Health create DocumentReferences), updated as the CarePlan,
        # its Goal or its Flags change.
        KindFhir(
            Kind.PROGRESS_NOTES,
            "DocumentReference",
            _nothing,
            natural=Variant("natural", ("DocumentReference",), _progress_note),
            of=Kind.ENROLLMENTS,
            versioned_by=frozenset({"CarePlan", "Goal", "Flag"}),
        ),
    )
}

# In pull order: patients before what refers to them; the infusions before the vital signs taken during them.
PULL_SOURCES: tuple[PullSource, ...] = (
    PullSource(Kind.PATIENTS, "Patient", Kind.PATIENTS, by_mrn=True),
    # Read-only at Epic and Oracle Health, but they hold the ketamine/esketamine infusions.
    PullSource("medication-administrations", "MedicationAdministration", Kind.KETAMINE_ADMINISTRATIONS),
    PullSource(Kind.QUESTIONNAIRE_RESPONSES, "QuestionnaireResponse", Kind.QUESTIONNAIRE_RESPONSES),
    PullSource("observations", "Observation", Kind.QUESTIONNAIRE_RESPONSES, search=(("category", "survey"),)),
    PullSource("encounters", "Encounter", Kind.CBT_SESSIONS),
    # Referrals to the programme enrol the patient (fhir_mappings/referral.py). Epic and Oracle both search
    # ServiceRequest by `patient` (their CapabilityStatements); the protocol comes from the target's rule.
    PullSource("referrals", "ServiceRequest", Kind.ENROLLMENTS, patient_param="patient"),
    # Epic and Oracle Health both search Appointment by `patient` (and `date`, `status`).
    PullSource(Kind.APPOINTMENTS, "Appointment", Kind.APPOINTMENTS, patient_param="patient"),
    PullSource("vital-signs", "Observation", Kind.KETAMINE_ADMINISTRATIONS, search=(("category", "vital-signs"),)),
)


# The kinds sent from each kind's records, that kind first (a backfill queues them together).
SENT_FROM: dict[Kind, tuple[Kind, ...]] = {
    kind: (kind, *(other.kind for other in KIND_FHIR.values() if other.of is kind))
    for kind, entry in KIND_FHIR.items()
    if entry.of is None
}


def kind_fhir(kind: str) -> KindFhir | None:
    """The table's entry for a stored kind name (an outbox or projection row's), None for a name not in it."""
    try:
        return KIND_FHIR[Kind(kind)]
    except ValueError:
        return None


def resources_of(
    kind: Kind, record: RecordMeta, canonical_base: str, context: PlanContext = NO_CONTEXT
) -> list[FhirJson]:
    """The R4 JSON resources the facade serves for a record."""
    return KIND_FHIR[kind].render(record, canonical_base, context)


# ---- the status a CarePlan carries ------------------------------------------------------------------------------


def _goal_achievement(status: PlanStatus | None) -> str | None:
    primary = status.outcomes[0] if status is not None and status.outcomes else None
    if primary is None or primary.latest is None:
        return None
    if primary.in_remission:
        return "achieved"
    if primary.worsening:
        return "worsening"
    return "improving" if primary.in_response else "in-progress"


def _progress(status: PlanStatus | None) -> dict[str, str]:
    if status is None:
        return {}
    counts = status.counts
    induction = counts.ketamine_induction
    after = f", {counts.ketamine_after_induction} after" if counts.ketamine_after_induction else ""
    return {
        "ketamine-course": f"{induction.done} of {induction.expected} induction sessions{after}",
        "cbt-course": f"{counts.cbt.done} of {counts.cbt.expected} CBT sessions",
        "measurement": f"{counts.measurements.done} of {counts.measurements.expected} measurements",
    }


def _safety_flags(enrollment_id: str, context: PlanContext, canonical_base: str) -> list[FhirJson]:
    """Each urgent reason as a Flag: active while open, inactive once acknowledged (kept, for the record)."""
    status = context.plan
    if status is None:
        return []
    flags = []
    for reason in status.reasons:
        if reason.severity != "urgent":
            continue
        flag = fm.to_json(
            fm.safety_flag_resource(
                canonical_base=canonical_base,
                enrollment_id=enrollment_id,
                patient_id=status.patient_id,
                code=reason.code,
                occurrence_id=reason.occurrence_id,
                message=reason.message,
                since=reason.since,
                evidence=[
                    {"reference": f"{context.evidence[i]}/{i}"} for i in reason.record_ids if i in context.evidence
                ],
            )
        )
        if not reason.open:
            flag["status"] = "inactive"
            if reason.acknowledgement is not None:
                flag["period"]["end"] = reason.acknowledgement.acknowledged_at.isoformat()
        flags.append(flag)
    return flags
