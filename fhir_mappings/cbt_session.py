"""CBT session → Encounter (the visit) + Procedure (the therapy done, or not done).

R4 Encounter.status has no no-show: a no-show is `cancelled` with our encounter-status-reason extension
coded no-show (and the Procedure is `not-done` with the same statusReason). Planned times use the R5
cross-version extensions for Encounter.plannedStartDate/plannedEndDate, so an attended session keeps both
its planned and its actual times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from .codes import AMBULATORY, CBT, CBT_OLD, CPT, CPT_PSYCHOTHERAPY, PSYCHOTHERAPY, SNOMED, V3_ACT_CODE, VIRTUAL
from .definitions import (
    CBT_DETAIL,
    CBT_MODULE,
    HOMEWORK_COMPLETED,
    SESSION_NUMBER,
    SESSION_STATUS_REASON,
    SESSION_STATUS_REASON_EXTENSION,
    coding,
    extension_url,
)
from .identity import base_resource, instant, reference, resource_id
from .records import CbtSessionRecord
from .release import Encounter, Procedure, build

# R5 Encounter.plannedStartDate/plannedEndDate as R4 cross-version extensions (R5 versions.html#extensions,
# URL pattern http://hl7.org/fhir/5.0/StructureDefinition/extension-<path>). unverified: not checked against
# the published hl7.fhir.uv.xver-r5.r4 package, which is not reachable here.
PLANNED_START_URL: Final = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedStartDate"
PLANNED_END_URL: Final = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"

ENCOUNTER_STATUS: Final = {
    "planned": "planned",
    "attended": "finished",
    "cancelled": "cancelled",
    "no-show": "cancelled",
    "entered-in-error": "entered-in-error",
}
PROCEDURE_STATUS: Final = {
    "planned": "preparation",
    "attended": "completed",
    "cancelled": "not-done",
    "no-show": "not-done",
    "entered-in-error": "entered-in-error",
}
_CLASSES: Final = {"in-person": AMBULATORY, "video": VIRTUAL}


@dataclass(frozen=True, slots=True)
class SessionResources:
    encounter: Encounter
    procedure: Procedure

    def all(self) -> list[Any]:
        return [self.encounter, self.procedure]


def psychotherapy_cpt(minutes: int) -> tuple[str, str]:
    """CPT psychotherapy code by session length (AMA time rules: 16-37, 38-52, 53+ minutes)."""
    for limit, code, display in CPT_PSYCHOTHERAPY:
        if limit is None or minutes <= limit:
            return code, display
    raise AssertionError("the last CPT band is open-ended")


def visit_types(record: CbtSessionRecord) -> list[dict[str, Any]]:
    """Encounter.type: the sender's types as sent (plus SNOMED CT CBT when the visit is CBT and they lack it, as
    when a site code was mapped to CBT); for a session recorded here, CPT by its length and the therapy code."""
    if record.visit_types:
        types: list[dict[str, Any]] = []
        for sent in record.visit_types:
            concept: dict[str, Any] = {
                "coding": [
                    {k: v for k, v in (("system", c.system), ("code", c.code), ("display", c.display)) if v}
                    for c in sent.coding
                ]
            }
            if sent.text:
                concept["text"] = sent.text
            types.append(concept)
        said_cbt = any(c.system == SNOMED and c.code in (CBT[0], CBT_OLD) for t in record.visit_types for c in t.coding)
        if record.modality == "cbt" and not said_cbt:
            types.append({"coding": [{"system": SNOMED, "code": CBT[0], "display": CBT[1]}]})
        return types
    return derived_visit_types(record.planned_minutes, record.modality)


def derived_visit_types(planned_minutes: int, modality: str) -> list[dict[str, Any]]:
    """The Encounter.type of a session recorded here: CPT by its length and the therapy's SNOMED CT code."""
    cpt = psychotherapy_cpt(planned_minutes)
    therapy = CBT if modality == "cbt" else PSYCHOTHERAPY
    return [
        {"coding": [{"system": CPT, "code": cpt[0], "display": cpt[1]}]},
        {"coding": [{"system": SNOMED, "code": therapy[0], "display": therapy[1]}]},
    ]


def _status_reason(record: CbtSessionRecord, canonical_base: str) -> dict[str, Any] | None:
    concept: dict[str, Any] = {}
    if record.status in ("no-show", "cancelled"):
        concept["coding"] = [coding(canonical_base, SESSION_STATUS_REASON, record.status)]
    if record.status_reason is not None:
        concept["text"] = record.status_reason
    return concept or None


def session_resources(record: CbtSessionRecord, *, canonical_base: str) -> SessionResources:
    encounter_id = resource_id(record.id)
    subject = reference("Patient", record.patient_id)
    planned_end = record.planned_start + timedelta(minutes=record.planned_minutes)
    cbt = record.modality == "cbt"
    # A visit whose modality was not stated is served as psychotherapy, never as CBT: that would add a claim
    # the sender did not make.
    therapy = CBT if cbt else PSYCHOTHERAPY
    noun = "CBT session" if cbt else "Psychotherapy session (modality not stated)"
    summary = f"{noun} {record.session_number} ({record.status})"
    reason = _status_reason(record, canonical_base)

    encounter = base_resource("Encounter", canonical_base, "cbt-session", record, summary)
    extensions = [
        {"url": extension_url(canonical_base, SESSION_NUMBER), "valuePositiveInt": record.session_number},
        {"url": PLANNED_START_URL, "valueDateTime": instant(record.planned_start)},
        {"url": PLANNED_END_URL, "valueDateTime": instant(planned_end)},
    ]
    if reason is not None:
        extensions.append(
            {"url": extension_url(canonical_base, SESSION_STATUS_REASON_EXTENSION), "valueCodeableConcept": reason}
        )
    klass = _CLASSES[record.setting]
    encounter |= {
        "extension": extensions,
        "status": ENCOUNTER_STATUS[record.status],
        "class": {"system": V3_ACT_CODE, "code": klass[0], "display": klass[1]},
        "type": visit_types(record),
        "subject": subject,
    }
    if record.actual_start is not None:
        period = {"start": instant(record.actual_start)}
        if record.actual_end is not None:
            period["end"] = instant(record.actual_end)
    else:
        period = {"start": instant(record.planned_start), "end": instant(planned_end)}
    encounter["period"] = period
    if record.therapist_id is not None:
        encounter["participant"] = [{"individual": reference("Practitioner", record.therapist_id)}]

    procedure = base_resource("Procedure", canonical_base, "cbt-session", record, summary, role="procedure")
    proc_extensions: list[dict[str, Any]] = [
        {"url": extension_url(canonical_base, CBT_MODULE), "valueString": m} for m in record.modules_covered
    ]
    if record.homework_completed is not None:
        proc_extensions.append(
            {"url": extension_url(canonical_base, HOMEWORK_COMPLETED), "valueBoolean": record.homework_completed}
        )
    if proc_extensions:
        procedure["extension"] = proc_extensions
    procedure |= {
        "status": PROCEDURE_STATUS[record.status],
        "code": {"coding": [{"system": SNOMED, "code": therapy[0], "display": therapy[1]}]},
        "subject": subject,
        "encounter": {"reference": f"Encounter/{encounter_id}"},
    }
    if reason is not None:
        procedure["statusReason"] = reason
    if record.actual_start is not None:
        procedure["performedPeriod"] = period
    if record.therapist_id is not None:
        procedure["performer"] = [{"actor": reference("Practitioner", record.therapist_id)}]
    if record.enrollment_id is not None:
        procedure["basedOn"] = [reference("CarePlan", record.enrollment_id)]
    if record.homework_set is not None:
        procedure["followUp"] = [
            {"coding": [coding(canonical_base, CBT_DETAIL, "homework")], "text": record.homework_set}
        ]
    return SessionResources(encounter=build(Encounter, encounter), procedure=build(Procedure, procedure))
