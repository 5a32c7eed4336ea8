"""A hospital's EHR holding a ketamine + CBT patient the way Epic and Oracle Health hold them (issue #19, done-when):
the Patient with its MRN and phone, PHQ-9 totals as score Observations in three value forms (one with item
components, item 9 positive), a BP panel during an infusion, two ketamine MedicationAdministrations, three
psychotherapy Encounters (two CPT 90837, one SNOMED CBT) and one booked CBT Appointment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# PHQ-9 item LOINC codes in item order (CLINICAL.md: PHQ-9 44249-1 panel, 44261-6 total).
PHQ9_ITEMS = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
PHQ9_TOTAL = "44261-6"
PHONE = "+1 608 555 0147"


@dataclass(frozen=True)
class Loaded:
    patient: str  # the EHR's Patient id
    observations: list[str]
    administrations: list[str]
    encounters: list[str]
    appointment: str


def patient(mrn_system: str, mrn: str) -> dict[str, Any]:
    # Epic types its MRN only with the text "MRN" beside the OID system.
    return {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "type": {"text": "MRN"}, "system": mrn_system, "value": mrn}],
        "name": [{"use": "official", "family": "Lindqvist", "given": ["Maren"]}],
        "gender": "female",
        "birthDate": "1984-02-11",
        "telecom": [{"system": "phone", "value": PHONE, "use": "mobile"}],
    }


def _survey(
    subject: str, when: str, value: dict[str, Any], components: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "survey"}]}],
        "code": {"coding": [{"system": LOINC, "code": PHQ9_TOTAL, "display": "PHQ-9 total score"}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": when,
        **value,
    }
    if components:
        resource["component"] = components
    return resource


def score_observations(subject: str) -> list[dict[str, Any]]:
    """Baseline 20 (valueInteger), 14 (valueQuantity {score}), then 9 (valueString) with its nine items, item 9 = 1."""
    items = [1, 1, 1, 1, 1, 1, 1, 1, 1]  # total 9: a response (>= 50% below 20); item 9 "several days"
    components = [
        {"code": {"coding": [{"system": LOINC, "code": code}]}, "valueInteger": value}
        for code, value in zip(PHQ9_ITEMS, items, strict=True)
    ]
    return [
        _survey(subject, "2026-10-04T09:00:00Z", {"valueInteger": 20}),
        _survey(
            subject,
            "2026-10-21T09:00:00Z",
            {
                "valueQuantity": {
                    "value": 14,
                    "unit": "{score}",
                    "system": "http://unitsofmeasure.org",
                    "code": "{score}",
                }
            },
        ),
        _survey(subject, "2026-11-10T09:00:00Z", {"valueString": "9"}, components),
    ]


def administrations(subject: str) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "6130", "display": "ketamine"}]},
            "subject": {"reference": f"Patient/{subject}"},
            "effectivePeriod": {"start": f"2026-10-{day}T09:00:00Z", "end": f"2026-10-{day}T09:40:00Z"},
            "dosage": {
                "route": {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]},
                "dose": {"value": 35, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
            },
        }
        for day in ("07", "09")
    ]


def blood_pressure(subject: str) -> dict[str, Any]:
    """During the first infusion (09:00-09:40): the 40-minute reading."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": "2026-10-07T09:35:00Z",
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {
                    "value": 148,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 92, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
            },
        ],
    }


def encounters(subject: str) -> list[dict[str, Any]]:
    cpt = {"coding": [{"system": CPT, "code": "90837", "display": "Psychotherapy, 60 minutes"}]}
    cbt = {"coding": [{"system": SNOMED, "code": "228557008", "display": "Cognitive and behavioral therapy"}]}
    return [
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [kind],
            "subject": {"reference": f"Patient/{subject}"},
            "period": {"start": f"2026-10-{day}T14:00:00Z", "end": f"2026-10-{day}T14:55:00Z"},
        }
        for day, kind in (("12", cpt), ("19", cpt), ("26", cbt))
    ]


def appointment(subject: str) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "serviceType": [
            {"coding": [{"system": SNOMED, "code": "228557008", "display": "Cognitive and behavioral therapy"}]}
        ],
        "start": "2026-12-10T14:00:00Z",
        "end": "2026-12-10T14:55:00Z",
        "participant": [{"actor": {"reference": f"Patient/{subject}"}, "status": "accepted"}],
    }


def load(peer: httpx.Client, mrn_system: str, mrn: str) -> Loaded:
    """Write the hospital's record into the EHR (sekmet, directly: the strict front is for the pull)."""

    def post(resource: dict[str, Any]) -> str:
        answer = peer.post(resource["resourceType"], json=resource)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    subject = post(patient(mrn_system, mrn))
    observations = [post(r) for r in score_observations(subject)] + [post(blood_pressure(subject))]
    given = [post(r) for r in administrations(subject)]
    visits = [post(r) for r in encounters(subject)]
    booked = post(appointment(subject))
    return Loaded(subject, observations, given, visits, booked)
