"""Notification Bundles (R4 Backport: a `history` Bundle whose first entry is the `subscription-status`
Parameters), built from stored rows; pure.

Used for what the worker sends (handshake, heartbeat, event-notification) and for what $status and $events answer
(query-status, query-event).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from service.subscriptions.tables import Subscription, SubscriptionNotification

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
NOTIFICATION_PROFILE = f"{BACKPORT}/backport-subscription-notification-r4"


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def status_parameters(
    subscription: Subscription,
    *,
    base: str,
    kind: str,
    events: list[SubscriptionNotification],
    content: str,
) -> dict[str, Any]:
    """The SubscriptionStatus of the Backport IG as R4 Parameters (kebab-case names, numbers as strings)."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{subscription.id}"}},
        {"name": "topic", "valueCanonical": subscription.resource.get("criteria")},
        {"name": "status", "valueCode": subscription.status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(subscription.events_since_start)},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [
            {"name": "event-number", "valueString": str(event.event_number)},
            {"name": "timestamp", "valueInstant": _instant(event.occurred_at)},
        ]
        if content != "empty" and event.focus_type and event.focus_id:
            parts.append({"name": "focus", "valueReference": {"reference": _focus_url(base, event)}})
        parameters.append({"name": "notification-event", "part": parts})
    if subscription.error:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": subscription.error}})
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }


def notification_bundle(
    subscription: Subscription,
    *,
    base: str,
    kind: str,
    events: list[SubscriptionNotification],
    content: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The Bundle; with full-resource content the events' focus resources follow the status, as of each event."""
    content = content or subscription.content
    status = status_parameters(subscription, base=base, kind=kind, events=events, content=content)
    entries: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{status['id']}", "resource": status}]
    for event in events:
        if content == "full-resource" and event.focus:
            entries.append(
                {
                    "fullUrl": _focus_url(base, event),
                    "resource": event.focus,
                    "request": {"method": "PUT", "url": f"{event.focus_type}/{event.focus_id}"},
                    "response": {"status": "200"},
                }
            )
        elif content == "id-only" and event.focus_type and event.focus_id:
            entries.append(
                {
                    "fullUrl": _focus_url(base, event),
                    "request": {"method": "PUT", "url": f"{event.focus_type}/{event.focus_id}"},
                    "response": {"status": "200"},
                }
            )
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": _instant(now),
        "entry": entries,
    }


def _focus_url(base: str, event: SubscriptionNotification) -> str:
    return f"{base}/{event.focus_type}/{event.focus_id}"
