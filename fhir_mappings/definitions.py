"""Our own code systems and extensions, defined once, and their publication as CodeSystem/StructureDefinition.

Every URL hangs off the deployment's canonical base (e.g. https://tandem.example.org/fhir), passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .release import FHIR_VERSION


@dataclass(frozen=True, slots=True)
class CodeSystemDefinition:
    name: str
    title: str
    description: str
    concepts: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ExtensionDefinition:
    name: str
    title: str
    description: str
    contexts: tuple[str, ...]
    value_type: str


PROGRAMME = CodeSystemDefinition(
    "programme-category",
    "Tandem programme category",
    "CarePlan categories of the combined ketamine/esketamine + CBT programme.",
    (
        ("ketamine-cbt", "Combined ketamine/esketamine and CBT programme"),
        # No standard code for treatment-resistant depression exists (CLINICAL.md §1): a programme flag.
        ("treatment-resistant", "Treatment-resistant depression"),
        ("ketamine-course", "Ketamine or esketamine course"),
        ("cbt-course", "CBT course"),
        ("measurement", "Symptom measurement"),
    ),
)
PLAN_STATUS = CodeSystemDefinition(
    "plan-status",
    "Tandem plan status",
    "Derived status of a patient's combined plan (CLINICAL.md §4).",
    (
        ("on_track", "On track"),
        ("needs_attention", "Needs attention"),
        ("at_risk", "At risk"),
        ("completed", "Completed"),
        ("discontinued", "Discontinued"),
        ("on_hold", "On hold"),
    ),
)
PLAN_STATUS_REASON = CodeSystemDefinition(
    "plan-status-reason",
    "Tandem plan status reason",
    "Why a plan has its status: the safety and adherence rules of CLINICAL.md §4. The codes are the plan-status "
    "engine's reason codes (service/plan_status); a test keeps the two lists equal.",
    (
        ("phq9_item9_positive", "PHQ-9 item 9 (thoughts of self-harm) answered at least 'several days'"),
        ("phq9_item9_not_reported", "A PHQ-9 sent as a total only: item 9 (self-harm) unknown, not screened"),
        ("cssrs_high_risk", "C-SSRS screener high risk"),
        ("bp_urgent", "Blood pressure at or above 180/110 at a session"),
        ("bp_predose_warning", "Pre-dose blood pressure above 140/90"),
        ("oversedation", "MOAA/S at or below the alert threshold"),
        ("serious_adverse_event", "A serious adverse event was recorded"),
        ("esketamine_observation_short", "Esketamine post-dose observation shorter than 120 minutes"),
        ("esketamine_observation_unrecorded", "Esketamine post-dose observation time not recorded"),
        ("rems_form_overdue", "REMS patient monitoring form not submitted within 7 days"),
        ("dissociation_high", "CADSS above the alert threshold"),
        ("instrument_alert", "An instrument total crossed its alert threshold"),
        ("worsening", "Symptom score rose by the worsening margin"),
        ("relapse", "Relapse after response"),
        ("non_response", "No response after induction"),
        ("ketamine_overdue", "Ketamine session overdue"),
        ("induction_window_exceeded", "Induction not completed within its window"),
        ("cbt_not_started", "CBT not started when the protocol expects it"),
        ("cbt_overdue", "CBT session overdue"),
        ("cbt_no_show_streak", "Consecutive CBT sessions missed or cancelled"),
        (
            "cbt_modality_not_stated",
            "Therapy sessions counted as CBT were recorded as psychotherapy without saying CBT",
        ),
        ("measurement_overdue", "Primary measurement overdue"),
        ("baseline_missing", "No baseline measurement"),
        ("baseline_too_old", "Baseline measurement older than the protocol allows"),
        ("baseline_due", "Baseline measurement due before the first session"),
        ("predose_measurement_missing", "No measurement before an induction session"),
        ("protocol_version_differs", "Computed with a protocol version other than the enrollment's"),
        ("patient_deceased", "The patient has died: the enrolment ended, no outreach is due"),
    ),
)
OBSERVATION = CodeSystemDefinition(
    "observation",
    "Tandem observation codes",
    "Observations without a LOINC code: per-session sedation and dissociation, adverse events.",
    (
        # MOAA/S and CADSS have no LOINC code (CLINICAL.md §2, '—'/'verify'): our codes until one is found.
        ("moaa-s", "Modified Observer's Assessment of Alertness/Sedation score"),
        ("cadss-total", "Clinician-Administered Dissociative States Scale total score"),
        ("adverse-event", "Adverse event during or after a ketamine/esketamine session"),
        ("adverse-event-serious", "Adverse event is serious"),
        ("instrument-total", "Total score of a symptom instrument without a LOINC total code"),
        ("safety-item", "Answer to a safety item that met its alert rule"),
    ),
)
SESSION_STATUS_REASON = CodeSystemDefinition(
    "session-status-reason",
    "Tandem session status reason",
    "Why a CBT session did not happen; R4 Encounter.status has no no-show.",
    (("no-show", "Patient did not attend"), ("cancelled", "Session cancelled")),
)
CBT_DETAIL = CodeSystemDefinition(
    "cbt-detail",
    "Tandem CBT session details",
    "Parts of a CBT session record carried in Procedure.",
    (("homework", "Homework set at the session"),),
)
CODE_SYSTEMS: Final = (PROGRAMME, PLAN_STATUS, PLAN_STATUS_REASON, OBSERVATION, SESSION_STATUS_REASON, CBT_DETAIL)

DOSE_PER_KG = ExtensionDefinition(
    "dose-per-body-weight",
    "Dose per body weight",
    "The prescribed weight-based dose (mg/kg) next to the absolute dose in Dosage.dose.",
    ("Dosage", "MedicationAdministration.dosage"),
    "Quantity",
)
LOT_NUMBER = ExtensionDefinition(
    "lot-number",
    "Lot number",
    "Lot of the drug given; R4 MedicationAdministration has no lot and we keep medicationCodeableConcept.",
    ("MedicationAdministration", "Procedure"),
    "string",
)
OBSERVATION_MINUTES = ExtensionDefinition(
    "post-dose-observation",
    "Post-dose observation time",
    "How long the patient was observed after dosing (esketamine label: at least 120 minutes).",
    ("MedicationAdministration", "Procedure"),
    "Duration",
)
REMS_SUBMITTED = ExtensionDefinition(
    "rems-form-submitted",
    "REMS form submitted",
    "When the esketamine REMS patient monitoring form was submitted.",
    ("MedicationAdministration", "Procedure"),
    "dateTime",
)
ADMINISTERED_DOSAGE = ExtensionDefinition(
    "administered-dosage",
    "Administered dosage",
    "Route and dose of a drug administration recorded as a Procedure (EHRs that accept no "
    "MedicationAdministration writes).",
    ("Procedure",),
    "Dosage",
)
PLAN_STATUS_EXTENSION = ExtensionDefinition(
    "plan-status",
    "Plan status",
    "The derived status of the combined plan, with its reasons as further codings.",
    ("CarePlan",),
    "CodeableConcept",
)
SESSION_STATUS_REASON_EXTENSION = ExtensionDefinition(
    "encounter-status-reason",
    "Encounter status reason",
    "Why an encounter has its status (no-show, cancellation); R4 Encounter has no statusReason.",
    ("Encounter",),
    "CodeableConcept",
)
SESSION_NUMBER = ExtensionDefinition(
    "cbt-session-number", "CBT session number", "Ordinal of the session in the course.", ("Encounter",), "positiveInt"
)
CBT_MODULE = ExtensionDefinition(
    "cbt-module", "CBT module covered", "A CBT module covered in the session.", ("Procedure",), "string"
)
HOMEWORK_COMPLETED = ExtensionDefinition(
    "cbt-homework-completed",
    "Previous homework completed",
    "Whether the homework of the previous session was done.",
    ("Procedure",),
    "boolean",
)
INSTRUMENT = ExtensionDefinition(
    "instrument",
    "Instrument",
    "Our instrument key for a response to someone else's Questionnaire.",
    ("QuestionnaireResponse",),
    "code",
)
KETAMINE_SESSION = ExtensionDefinition(
    "ketamine-session",
    "Ketamine session",
    "The administration a response was taken at; R4 QuestionnaireResponse.partOf cannot reference one.",
    ("QuestionnaireResponse",),
    "Reference",
)
SOURCE_IDENTIFIER = ExtensionDefinition(
    "source-identifier",
    "Source identifier",
    "The sending system's identifier of the record, where the resource allows only one identifier "
    "(R4 QuestionnaireResponse.identifier is 0..1 and holds ours).",
    ("QuestionnaireResponse",),
    "Identifier",
)
SENT_TOTAL = ExtensionDefinition(
    "sent-total",
    "Total as sent",
    "The total score the sender computed, kept beside ours.",
    ("QuestionnaireResponse",),
    "decimal",
)
EXTENSIONS: Final = (
    SOURCE_IDENTIFIER,
    SENT_TOTAL,
    DOSE_PER_KG,
    LOT_NUMBER,
    OBSERVATION_MINUTES,
    REMS_SUBMITTED,
    ADMINISTERED_DOSAGE,
    PLAN_STATUS_EXTENSION,
    SESSION_STATUS_REASON_EXTENSION,
    SESSION_NUMBER,
    CBT_MODULE,
    HOMEWORK_COMPLETED,
    INSTRUMENT,
    KETAMINE_SESSION,
)


def code_system_url(canonical_base: str, definition: CodeSystemDefinition) -> str:
    return f"{canonical_base}/CodeSystem/{definition.name}"


def extension_url(canonical_base: str, definition: ExtensionDefinition) -> str:
    return f"{canonical_base}/StructureDefinition/{definition.name}"


def coding(canonical_base: str, definition: CodeSystemDefinition, code: str) -> dict[str, Any]:
    display = dict(definition.concepts)[code]
    return {"system": code_system_url(canonical_base, definition), "code": code, "display": display}


def code_system_resource(canonical_base: str, definition: CodeSystemDefinition) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": definition.name,
        "url": code_system_url(canonical_base, definition),
        "name": _computable_name(definition.name),
        "title": definition.title,
        "status": "active",
        "description": definition.description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(definition.concepts),
        "concept": [{"code": code, "display": display} for code, display in definition.concepts],
    }


def extension_definition_resource(canonical_base: str, definition: ExtensionDefinition) -> dict[str, Any]:
    url = extension_url(canonical_base, definition)
    return {
        "resourceType": "StructureDefinition",
        "id": definition.name,
        "url": url,
        "name": _computable_name(definition.name),
        "title": definition.title,
        "status": "active",
        "description": definition.description,
        "fhirVersion": FHIR_VERSION,
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": context} for context in definition.contexts],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {
                    "id": "Extension",
                    "path": "Extension",
                    "short": definition.title,
                    "definition": definition.description,
                },
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
                {
                    "id": "Extension.value[x]",
                    "path": "Extension.value[x]",
                    "min": 1,
                    "type": [{"code": definition.value_type}],
                },
            ]
        },
    }


def published_definitions(canonical_base: str) -> list[dict[str, Any]]:
    """Every CodeSystem and extension StructureDefinition we publish, as R4 JSON dicts."""
    return [code_system_resource(canonical_base, d) for d in CODE_SYSTEMS] + [
        extension_definition_resource(canonical_base, d) for d in EXTENSIONS
    ]


def _computable_name(name: str) -> str:
    # R4 inv-0 on name: starts with an upper-case letter, no spaces or hyphens.
    return "Tandem" + "".join(part.capitalize() for part in name.split("-"))
