"""Enrollment → CarePlan (US Core assess-plan) with the Condition it addresses and the remission Goal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .codes import (
    ASSESS_PLAN,
    CBT,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    RXNORM,
    RXNORM_ESKETAMINE,
    RXNORM_KETAMINE,
    SNOMED,
    US_CORE_CAREPLAN_CATEGORY,
)
from .definitions import PLAN_STATUS, PLAN_STATUS_EXTENSION, PLAN_STATUS_REASON, PROGRAMME, coding, extension_url
from .identity import base_resource, day, reference, sub_resource_id
from .records import EnrollmentRecord
from .release import CarePlan, Condition, Goal, build

# R4 CarePlan.status has no "discontinued": revoked is "stopped before completion" (R4 request-status).
_CARE_PLAN_STATUS: Final = {
    "active": "active",
    "on-hold": "on-hold",
    "completed": "completed",
    "discontinued": "revoked",
}
# R4 CarePlan.activity.detail.status (care-plan-activity-status).
_ACTIVITY_STATUS: Final = {
    "active": "in-progress",
    "on-hold": "on-hold",
    "completed": "completed",
    "discontinued": "stopped",
}
# R4 Goal.lifecycleStatus (goal-status).
_GOAL_STATUS: Final = {"active": "active", "on-hold": "on-hold", "completed": "completed", "discontinued": "cancelled"}


@dataclass(frozen=True, slots=True)
class CarePlanResources:
    care_plan: CarePlan
    condition: Condition
    goal: Goal

    def all(self) -> list[Any]:
        return [self.care_plan, self.condition, self.goal]


GOAL_ACHIEVEMENT = "http://terminology.hl7.org/CodeSystem/goal-achievement"


def care_plan_resources(
    record: EnrollmentRecord,
    *,
    canonical_base: str,
    plan_status: str | None = None,
    plan_status_reasons: tuple[str, ...] = (),
    goal_achievement: str | None = None,
    progress: Mapping[str, str] | None = None,
) -> CarePlanResources:
    """plan_status/reasons are codes of our plan-status CodeSystems, computed by the service; goal_achievement is
    a goal-achievement code (achieved, improving, worsening, in-progress, …); progress is a note per activity
    ("ketamine-course", "cbt-course", "measurement"), e.g. "4 of 6 induction sessions"."""
    condition_id = sub_resource_id(record.id, "condition")
    goal_id = sub_resource_id(record.id, "goal")
    subject = reference("Patient", record.patient_id)
    plan = base_resource(
        "CarePlan", canonical_base, "enrollment", record, f"Ketamine + CBT plan ({record.protocol_id})"
    )
    categories = [{"coding": [{"system": US_CORE_CAREPLAN_CATEGORY, "code": ASSESS_PLAN}]}]
    categories.append({"coding": [coding(canonical_base, PROGRAMME, "ketamine-cbt")]})
    if record.treatment_resistant:
        categories.append({"coding": [coding(canonical_base, PROGRAMME, "treatment-resistant")]})
    period = {"start": day(record.start_date)}
    if record.end_date is not None:
        period["end"] = day(record.end_date)
    plan |= {
        # A protocol is not (yet) a published PlanDefinition, so it is named by URI, not canonical.
        "instantiatesUri": [f"{canonical_base}/protocol/{record.protocol_id}"],
        "status": _CARE_PLAN_STATUS[record.status],
        "intent": "plan",
        "category": categories,
        "title": f"Ketamine/esketamine and CBT: {record.protocol_id}",
        "subject": subject,
        "period": period,
        "addresses": [{"reference": f"Condition/{condition_id}"}],
        "goal": [{"reference": f"Goal/{goal_id}"}],
        "activity": _activities(record, canonical_base, progress or {}),
    }
    if record.status_reason is not None:
        plan["note"] = [{"text": record.status_reason}]
    if record.coordinator_id is not None:
        plan["author"] = reference("Practitioner", record.coordinator_id)
    if plan_status is not None:
        concept = [coding(canonical_base, PLAN_STATUS, plan_status)]
        concept += [coding(canonical_base, PLAN_STATUS_REASON, r) for r in plan_status_reasons]
        plan["extension"] = [
            {"url": extension_url(canonical_base, PLAN_STATUS_EXTENSION), "valueCodeableConcept": {"coding": concept}}
        ]
    return CarePlanResources(
        care_plan=build(CarePlan, plan),
        condition=build(Condition, _condition(record, canonical_base, subject)),
        goal=build(Goal, _goal(record, canonical_base, subject, condition_id, goal_achievement)),
    )


def _activities(record: EnrollmentRecord, canonical_base: str, progress: Mapping[str, str]) -> list[dict[str, Any]]:
    activities = _activity_details(record, canonical_base)
    for activity in activities:
        component = activity["detail"]["code"]["coding"][0]["code"]
        if component in progress:
            activity["progress"] = [{"text": progress[component]}]
    return activities


def _activity_details(record: EnrollmentRecord, canonical_base: str) -> list[dict[str, Any]]:
    status = _ACTIVITY_STATUS[record.status]
    esketamine = "esketamine" in record.protocol_id
    drug = (RXNORM_ESKETAMINE, "esketamine") if esketamine else (RXNORM_KETAMINE, "ketamine")
    return [
        {
            "detail": {
                "kind": "MedicationRequest",
                "code": {"coding": [coding(canonical_base, PROGRAMME, "ketamine-course")]},
                "status": status,
                "productCodeableConcept": {"coding": [{"system": RXNORM, "code": drug[0]}], "text": drug[1]},
                "description": f"{drug[1].capitalize()} course",
            }
        },
        {
            "detail": {
                "kind": "ServiceRequest",
                "code": {
                    "coding": [
                        coding(canonical_base, PROGRAMME, "cbt-course"),
                        {"system": SNOMED, "code": CBT[0], "display": CBT[1]},
                    ]
                },
                "status": status,
                "description": "CBT course",
            }
        },
        {
            "detail": {
                "instantiatesCanonical": [f"{canonical_base}/Questionnaire/{record.primary_instrument}"],
                "code": {"coding": [coding(canonical_base, PROGRAMME, "measurement")]},
                "status": status,
                "description": f"Symptom measurement ({record.primary_instrument})",
            }
        },
    ]


def _condition(record: EnrollmentRecord, canonical_base: str, subject: dict[str, Any]) -> dict[str, Any]:
    target = record.target_condition
    code: dict[str, Any] = {"system": target.system, "code": target.code}
    if target.display is not None:
        code["display"] = target.display
    condition = base_resource(
        "Condition", canonical_base, "enrollment", record, target.display or target.code, role="condition"
    )
    return condition | {
        # con-3: a problem-list Condition carries clinicalStatus; the programme treats it, so it is active.
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}],
        "code": {"coding": [code], **({"text": target.display} if target.display else {})},
        "subject": subject,
    }


def _goal(
    record: EnrollmentRecord, canonical_base: str, subject: dict[str, Any], condition_id: str, achievement: str | None
) -> dict[str, Any]:
    text = f"Remission of depressive symptoms on {record.primary_instrument}"
    goal = base_resource("Goal", canonical_base, "enrollment", record, text, role="goal")
    if achievement is not None:
        # R4 value set goal-achievement (http://hl7.org/fhir/R4/valueset-goal-achievement.html).
        goal["achievementStatus"] = {"coding": [{"system": GOAL_ACHIEVEMENT, "code": achievement}]}
    return goal | {
        "lifecycleStatus": _GOAL_STATUS[record.status],
        "description": {"text": text},
        "subject": subject,
        "startDate": day(record.start_date),
        "addresses": [{"reference": f"Condition/{condition_id}"}],
    }
