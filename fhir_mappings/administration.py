"""Ketamine/esketamine administration → MedicationAdministration (or, for EHRs that refuse it, a Procedure).

Dose: Dosage.dose is the absolute dose in mg when known, the mg/kg dose otherwise; when both are known the
mg/kg dose travels in our dose-per-body-weight extension on Dosage. Lot: R4 MedicationAdministration has no
lot element, so it travels in our lot-number extension and medication stays a CodeableConcept (EHR searches
by code work; no contained Medication).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .codes import ADMINISTRATION_OF_DRUG, ROUTE_CODES, RXNORM, RXNORM_ESKETAMINE, RXNORM_KETAMINE, SNOMED, UCUM
from .definitions import (
    ADMINISTERED_DOSAGE,
    DOSE_PER_KG,
    LOT_NUMBER,
    OBSERVATION_MINUTES,
    REMS_SUBMITTED,
    extension_url,
)
from .identity import base_resource, instant, reference, resource_id
from .records import KetamineAdministrationRecord
from .release import MedicationAdministration, Observation, Procedure, build
from .session_observations import session_observations

_DRUGS: Final = {
    "ketamine": {"coding": [{"system": RXNORM, "code": RXNORM_KETAMINE, "display": "ketamine"}], "text": "ketamine"},
    # unverified: RxNorm display of 2201623 (CLINICAL.md §1 names it "esketamine nasal spray"), so none is sent.
    "esketamine": {"coding": [{"system": RXNORM, "code": RXNORM_ESKETAMINE}], "text": "esketamine nasal spray"},
}
# R4 Procedure.status has completed/stopped/not-done like MedicationAdministration.
_PROCEDURE_STATUS: Final = {
    "completed": "completed",
    "stopped": "stopped",
    "not-done": "not-done",
    "entered-in-error": "entered-in-error",
}


@dataclass(frozen=True, slots=True)
class AdministrationResources:
    """The administration (MedicationAdministration, or Procedure as fallback) and its session Observations."""

    administration: MedicationAdministration | Procedure
    observations: tuple[Observation, ...]

    def all(self) -> list[Any]:
        return [self.administration, *self.observations]


def medication_concept(drug: str) -> dict[str, Any]:
    return _DRUGS[drug]


def dosage(record: KetamineAdministrationRecord, canonical_base: str) -> dict[str, Any]:
    route_code, route_display = ROUTE_CODES[record.route]
    result: dict[str, Any] = {
        "text": _dose_text(record),
        "route": {"coding": [{"system": SNOMED, "code": route_code, "display": route_display}]},
    }
    if record.dose_mg is not None:
        result["dose"] = {"value": record.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}
        if record.dose_mg_per_kg is not None:
            result["extension"] = [
                {
                    "url": extension_url(canonical_base, DOSE_PER_KG),
                    "valueQuantity": {"value": record.dose_mg_per_kg, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"},
                }
            ]
    elif record.dose_mg_per_kg is not None:
        result["dose"] = {"value": record.dose_mg_per_kg, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}
    return result


def dosage_datatype(record: KetamineAdministrationRecord, canonical_base: str) -> dict[str, Any]:
    """The same dosage as an R4 Dosage datatype, whose dose sits in doseAndRate.doseQuantity."""
    result = dosage(record, canonical_base)
    dose = result.pop("dose", None)
    if dose is not None:
        result["doseAndRate"] = [{"doseQuantity": dose}]
    return result


def _dose_text(record: KetamineAdministrationRecord) -> str:
    parts = [f"{record.drug} {record.route}"]
    if record.dose_mg is not None:
        parts.append(f"{record.dose_mg:g} mg")
    if record.dose_mg_per_kg is not None:
        parts.append(f"{record.dose_mg_per_kg:g} mg/kg")
    return ", ".join(parts)


def _session_extensions(record: KetamineAdministrationRecord, canonical_base: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if record.lot_number is not None:
        found.append({"url": extension_url(canonical_base, LOT_NUMBER), "valueString": record.lot_number})
    if record.observation_minutes is not None:
        minutes = {"value": record.observation_minutes, "unit": "min", "system": UCUM, "code": "min"}
        found.append({"url": extension_url(canonical_base, OBSERVATION_MINUTES), "valueDuration": minutes})
    if record.rems_form_submitted_at is not None:
        found.append(
            {
                "url": extension_url(canonical_base, REMS_SUBMITTED),
                "valueDateTime": instant(record.rems_form_submitted_at),
            }
        )
    return found


def _period(record: KetamineAdministrationRecord) -> dict[str, str]:
    period = {"start": instant(record.started_at)}
    if record.ended_at is not None:
        period["end"] = instant(record.ended_at)
    return period


def administration_resources(record: KetamineAdministrationRecord, *, canonical_base: str) -> AdministrationResources:
    summary = f"{_dose_text(record)} ({record.status})"
    resource = base_resource("MedicationAdministration", canonical_base, "ketamine-administration", record, summary)
    extensions = _session_extensions(record, canonical_base)
    if extensions:
        resource["extension"] = extensions
    resource |= {
        "status": record.status,
        "medicationCodeableConcept": medication_concept(record.drug),
        "subject": reference("Patient", record.patient_id),
        "effectivePeriod": _period(record),
        "dosage": dosage(record, canonical_base),
    }
    if record.status_reason is not None:
        resource["statusReason"] = [{"text": record.status_reason}]
    if record.performer_id is not None:
        resource["performer"] = [{"actor": reference("Practitioner", record.performer_id)}]
    if record.enrollment_id is not None:
        # R4 MedicationAdministration has no basedOn; supportingInformation takes any reference.
        resource["supportingInformation"] = [reference("CarePlan", record.enrollment_id)]
    part_of = {"reference": f"MedicationAdministration/{resource_id(record.id)}"}
    return AdministrationResources(
        administration=build(MedicationAdministration, resource),
        observations=tuple(session_observations(record, canonical_base=canonical_base, part_of=part_of)),
    )


def administration_fallback(record: KetamineAdministrationRecord, *, canonical_base: str) -> AdministrationResources:
    """A Procedure "administration of drug" plus the same Observations, for EHRs refusing MedicationAdministration.

    The drug is Procedure.usedCode; route and dose travel as an R4 Dosage in our administered-dosage extension
    (MedicationAdministration.dosage.dose becomes Dosage.doseAndRate.doseQuantity there).
    """
    summary = f"Administration of {_dose_text(record)} ({record.status})"
    resource = base_resource("Procedure", canonical_base, "ketamine-administration", record, summary)
    resource["extension"] = [
        {
            "url": extension_url(canonical_base, ADMINISTERED_DOSAGE),
            "valueDosage": dosage_datatype(record, canonical_base),
        },
        *_session_extensions(record, canonical_base),
    ]
    resource |= {
        "status": _PROCEDURE_STATUS[record.status],
        "code": {
            "coding": [{"system": SNOMED, "code": ADMINISTRATION_OF_DRUG[0], "display": ADMINISTRATION_OF_DRUG[1]}],
            "text": f"Administration of {record.drug}",
        },
        "subject": reference("Patient", record.patient_id),
        "performedPeriod": _period(record),
        "usedCode": [medication_concept(record.drug)],
    }
    if record.status_reason is not None:
        resource["statusReason"] = {"text": record.status_reason}
    if record.performer_id is not None:
        resource["performer"] = [{"actor": reference("Practitioner", record.performer_id)}]
    if record.enrollment_id is not None:
        resource["basedOn"] = [reference("CarePlan", record.enrollment_id)]
    part_of = {"reference": f"Procedure/{resource_id(record.id)}"}
    return AdministrationResources(
        administration=build(Procedure, resource),
        observations=tuple(session_observations(record, canonical_base=canonical_base, part_of=part_of)),
    )
