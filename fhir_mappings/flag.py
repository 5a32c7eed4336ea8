"""An open safety flag of a plan (e.g. PHQ-9 item 9 positive) as an R4 Flag pointing at its evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .definitions import PLAN_STATUS_REASON, coding
from .identity import instant, narrative, reference, sub_resource_id
from .release import Flag, build

FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
# Core R4 extension flag-detail: "points to the Observation, AllergyIntolerance or other record that
# provides additional supporting information about this flag" (hl7.org/fhir/R4/extension-flag-detail.html).
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"


def safety_flag_resource(
    *,
    canonical_base: str,
    enrollment_id: str,
    patient_id: str,
    code: str,
    occurrence_id: str,
    message: str,
    since: datetime,
    evidence: list[dict[str, Any]],
) -> Flag:
    """evidence: references (e.g. {"reference": "QuestionnaireResponse/…"}) of the records behind the flag."""
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "id": sub_resource_id(enrollment_id, f"flag-{code}-{occurrence_id}"),
        "text": narrative(message),
        "identifier": [
            {"system": f"{canonical_base}/identifier/flag", "value": f"{enrollment_id}/{code}/{occurrence_id}"}
        ],
        "status": "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}],
        "code": {"coding": [coding(canonical_base, PLAN_STATUS_REASON, code)], "text": message},
        "subject": reference("Patient", patient_id),
        "period": {"start": instant(since)},
        "extension": [{"url": FLAG_DETAIL, "valueReference": e} for e in evidence],
    }
    return build(Flag, resource)
