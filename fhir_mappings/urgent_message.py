"""An urgent finding of a plan (PHQ-9 item 9 positive, a C-SSRS positive screen, BP ≥ 180/110, …) as an R4
Communication to the care team: the in-basket message an EHR shows, one per occurrence of the finding.

`in-progress` while the finding is open, `completed` once a clinician acknowledged it at Tandem. The evidence is
named by absolute references to Tandem's facade (`about`): the EHR may not hold the record the finding cites, and a
relative reference to an id it does not know would point at nothing.
"""

from __future__ import annotations

from datetime import datetime

from .definitions import PLAN_STATUS_REASON, coding
from .identity import instant, narrative, reference, sub_resource_id
from .release import Communication, build

COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"


def urgent_finding_message(
    *,
    canonical_base: str,
    enrollment_id: str,
    patient_id: str,
    code: str,
    occurrence_id: str,
    message: str,
    since: datetime,
    closed: bool,
    evidence: list[str],
    care_team: list[str],
) -> Communication:
    """evidence: "Type/id" of the records behind the finding; care_team: practitioner ids it is addressed to."""
    resource = {
        "resourceType": "Communication",
        "id": sub_resource_id(enrollment_id, f"alert-{code}-{occurrence_id}"),
        "text": narrative(message),
        "identifier": [
            {
                "system": f"{canonical_base}/identifier/urgent-finding",
                "value": f"{enrollment_id}/message/{code}/{occurrence_id}",  # the Flag's role is "<code>/<occurrence>"
            }
        ],
        "status": "completed" if closed else "in-progress",
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY, "code": "alert", "display": "Alert"}]}],
        "priority": "urgent",
        "subject": reference("Patient", patient_id),
        "about": [{"reference": f"{canonical_base}/{e}"} for e in evidence],
        "sent": instant(since),
        "recipient": [reference("Practitioner", p) for p in care_team],
        "reasonCode": [{"coding": [coding(canonical_base, PLAN_STATUS_REASON, code)]}],
        "payload": [{"contentString": message}],
    }
    return build(Communication, resource)
