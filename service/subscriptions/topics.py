"""The three topics Tandem publishes, and which written resource version raises which topic's event.

R4 has no SubscriptionTopic: the Backport IG publishes a topic as a `Basic` carrying the R5 cross-version
`extension-SubscriptionTopic.*` extensions (read at /fhir/Basic/<id>), and lists the topic canonicals on the
CapabilityStatement's Subscription entry (`capabilitystatement-subscriptiontopic-canonical`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
TOPIC_CANONICAL_EXTENSION = f"{BACKPORT}/capabilitystatement-subscriptiontopic-canonical"
CROSS_VERSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic"
TOPIC_CODE = {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]}


@dataclass(frozen=True)
class Topic:
    name: str
    title: str
    description: str
    focus_type: str  # the resource an event is about (its `focus`)
    trigger: str  # the trigger in words, as published (fhirPathCriteria, with %previous / %current)

    def url(self, canonical_base: str) -> str:
        return f"{canonical_base}/SubscriptionTopic/{self.name}"

    @property
    def basic_id(self) -> str:
        return f"topic-{self.name}"


PLAN_STATUS_CHANGED = Topic(
    "plan-status-changed",
    "Plan status changed",
    "The computed status of a patient's combined ketamine/esketamine + CBT plan (on track, needs attention, at "
    "risk, …) changed: the CarePlan carrying it is the focus.",
    "CarePlan",
    "%previous.extension.where(url.endsWith('/plan-status')).value.coding.first().code != "
    "%current.extension.where(url.endsWith('/plan-status')).value.coding.first().code",
)
URGENT_REASON_RAISED = Topic(
    "urgent-reason-raised",
    "Urgent reason raised",
    "A safety finding was raised on a plan (PHQ-9 item 9 positive, a C-SSRS positive screen, a blood pressure "
    "over the protocol's limit, …): the new active Flag, pointing at its evidence, is the focus.",
    "Flag",
    "(%previous.empty() or %previous.status != 'active') and %current.status = 'active'",
)
QUESTIONNAIRE_SCORED = Topic(
    "questionnaire-scored",
    "Questionnaire scored",
    "A questionnaire response (PHQ-9, GAD-7, C-SSRS, …) was received and scored, or its answers changed: the "
    "QuestionnaireResponse is the focus.",
    "QuestionnaireResponse",
    "%current.status = 'completed' and (%previous.empty() or %previous != %current)",
)
TOPICS: tuple[Topic, ...] = (PLAN_STATUS_CHANGED, URGENT_REASON_RAISED, QUESTIONNAIRE_SCORED)
FOCUS_TYPES = frozenset(t.focus_type for t in TOPICS)


def topic_by_url(canonical_base: str, url: str) -> Topic | None:
    return next((t for t in TOPICS if t.url(canonical_base) == url), None)


def topic_by_basic_id(basic_id: str) -> Topic | None:
    return next((t for t in TOPICS if t.basic_id == basic_id), None)


def raised_topics(resource_type: str, current: dict[str, Any] | None, previous: dict[str, Any] | None) -> list[Topic]:
    """The topics a newly written version raises (current None: the resource was deleted, which raises none)."""
    if current is None:
        return []
    if previous is not None and not previous:  # a deleted version before this one: as if new
        previous = None
    if resource_type == "CarePlan":
        return [PLAN_STATUS_CHANGED] if _plan_status(current) != _plan_status(previous) else []
    if resource_type == "Flag":
        was_active = previous is not None and previous.get("status") == "active"
        return [URGENT_REASON_RAISED] if current.get("status") == "active" and not was_active else []
    if resource_type == "QuestionnaireResponse":
        return [QUESTIONNAIRE_SCORED] if current.get("status") in ("completed", "amended") else []
    return []


def _plan_status(care_plan: dict[str, Any] | None) -> str | None:
    for extension in (care_plan or {}).get("extension") or []:
        if str(extension.get("url", "")).endswith("/plan-status"):
            codings = (extension.get("valueCodeableConcept") or {}).get("coding") or []
            return str(codings[0].get("code")) if codings else None
    return None


def topic_basic(topic: Topic, canonical_base: str) -> dict[str, Any]:
    """The topic as an R4 Basic (the IG's and fhir-candle's encoding)."""
    trigger = [
        {"url": "description", "valueMarkdown": topic.description},
        {"url": "resource", "valueUri": f"http://hl7.org/fhir/StructureDefinition/{topic.focus_type}"},
        {"url": "supportedInteraction", "valueCode": "create"},
        {"url": "supportedInteraction", "valueCode": "update"},
        {"url": "fhirPathCriteria", "valueString": topic.trigger},
    ]
    can_filter_by = [
        {"url": "description", "valueMarkdown": "The patient the event is about: patient=Patient/<id>"},
        {"url": "resource", "valueUri": topic.focus_type},
        {"url": "filterParameter", "valueString": "patient"},
    ]
    return {
        "resourceType": "Basic",
        "id": topic.basic_id,
        "modifierExtension": [{"url": f"{CROSS_VERSION}.status", "valueCode": "active"}],
        "extension": [
            {"url": f"{CROSS_VERSION}.url", "valueUri": topic.url(canonical_base)},
            {"url": f"{CROSS_VERSION}.version", "valueString": "1.0.0"},
            {"url": f"{CROSS_VERSION}.name", "valueString": topic.name.replace("-", "_")},
            {"url": f"{CROSS_VERSION}.title", "valueString": topic.title},
            {"url": f"{CROSS_VERSION}.description", "valueMarkdown": topic.description},
            {"url": f"{CROSS_VERSION}.resourceTrigger", "extension": trigger},
            {"url": f"{CROSS_VERSION}.canFilterBy", "extension": can_filter_by},
            {
                "url": f"{CROSS_VERSION}.notificationShape",
                "extension": [{"url": "resource", "valueUri": topic.focus_type}],
            },
        ],
        "code": TOPIC_CODE,
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{topic.title}</div>'},
    }
