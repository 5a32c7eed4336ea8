"""Subscription create, read, search and delete on /fhir, and the Backport IG's $status and $events.

Tenant-scoped like every record (another hospital's subscription is "not found"); the handshake is queued in the
creating request's transaction, and the worker makes the subscription active when the subscriber answers it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from service.audit_trail import RequestContext, record_success
from service.clock import now_utc
from service.errors import RecordNotFound, invalid
from service.fhir.search_parameters import check_parameters
from service.fhir.subscription_validation import read_subscription
from service.subscriptions.events import new_subscription_id, queue_handshake
from service.subscriptions.notifications import notification_bundle
from service.subscriptions.tables import Subscription, SubscriptionNotification
from service.subscriptions.topics import TOPICS, topic_basic, topic_by_basic_id

MAX_EVENTS_PER_QUERY = 100


def create(session: Session, ctx: RequestContext, resource: dict[str, Any], base: str) -> dict[str, Any]:
    accepted = read_subscription(session, ctx.tenant_id, resource, ctx.settings)
    now = now_utc()
    kept = {k: v for k, v in resource.items() if k not in ("id", "meta", "status", "error")}
    subscription = Subscription(
        id=new_subscription_id(),
        tenant_id=ctx.tenant_id,
        status="requested",
        topic=accepted.topic.name,
        patient_filter=accepted.patient_filter,
        endpoint=accepted.endpoint,
        headers=accepted.headers,
        content=accepted.content,
        heartbeat_seconds=accepted.heartbeat_seconds,
        timeout_seconds=accepted.timeout_seconds,
        max_count=accepted.max_count,
        end=accepted.end,
        resource=kept,
        fhir_base=base,
        created_by=ctx.principal.subject,
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    session.flush()
    queue_handshake(session, subscription)
    _audit(session, ctx, subscription.id, 201)
    return as_resource(subscription)


def get(session: Session, ctx: RequestContext, subscription_id: str) -> Subscription:
    found = session.get(Subscription, subscription_id)
    if found is None or found.tenant_id != ctx.tenant_id:
        raise RecordNotFound("Subscription", subscription_id)
    return found


def read(session: Session, ctx: RequestContext, subscription_id: str) -> dict[str, Any]:
    subscription = get(session, ctx, subscription_id)
    _audit(session, ctx, subscription_id, 200)
    return as_resource(subscription)


def search(session: Session, ctx: RequestContext, params: list[tuple[str, str]], base: str) -> dict[str, Any]:
    """By status (codes, comma: any), criteria (the topic canonical: starts with, case ignored) and url (the
    endpoint); the declared parameters only (check_parameters). A hospital has few subscriptions: they are
    filtered here, so no value sent reaches SQL."""
    check_parameters("Subscription", params)
    found = list(
        session.exec(
            select(Subscription)
            .where(col(Subscription.tenant_id) == ctx.tenant_id)
            .order_by(col(Subscription.created_at), col(Subscription.id))
        ).all()
    )
    for name, value in params:
        if name == "status":
            found = [s for s in found if s.status in value.split(",")]
        elif name == "criteria":
            found = [s for s in found if str(s.resource.get("criteria", "")).lower().startswith(value.lower())]
        elif name == "url":
            found = [s for s in found if s.endpoint == value.rstrip("/")]
    _audit(session, ctx, None, 200)
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [
            {"fullUrl": f"{base}/Subscription/{s.id}", "resource": as_resource(s), "search": {"mode": "match"}}
            for s in found
        ],
    }


def delete(session: Session, ctx: RequestContext, subscription_id: str) -> None:
    """The subscription is turned off: nothing more is raised or sent; its events stay readable by $events."""
    subscription = get(session, ctx, subscription_id)
    now = now_utc()
    subscription.status, subscription.updated_at = "off", now
    session.add(subscription)
    session.execute(
        update(SubscriptionNotification)
        .where(
            col(SubscriptionNotification.subscription_id) == subscription_id,
            col(SubscriptionNotification.status).in_(("pending", "failed", "held")),
        )
        .values(status="cancelled")
    )
    _audit(session, ctx, subscription_id, 200)


def status(session: Session, ctx: RequestContext, subscription_id: str) -> dict[str, Any]:
    subscription = get(session, ctx, subscription_id)
    _audit(session, ctx, subscription_id, 200)
    return notification_bundle(subscription, base=subscription.fhir_base, kind="query-status", events=[], now=now_utc())


def events(session: Session, ctx: RequestContext, subscription_id: str, params: dict[str, str]) -> dict[str, Any]:
    """The events numbered eventsSinceNumber..eventsUntilNumber (inclusive; at most 100), whatever their delivery
    became: a subscriber that was down reads what it missed by number."""
    subscription = get(session, ctx, subscription_id)
    since = _number(params.get("eventsSinceNumber"), "eventsSinceNumber", 1)
    until = _number(params.get("eventsUntilNumber"), "eventsUntilNumber", subscription.events_since_start)
    content = params.get("content") or subscription.content
    if content not in ("empty", "id-only", "full-resource"):
        raise invalid("content", f"{content!r}: must be empty, id-only or full-resource")
    rows = session.exec(
        select(SubscriptionNotification)
        .where(
            col(SubscriptionNotification.subscription_id) == subscription_id,
            col(SubscriptionNotification.event_number) >= since,
            col(SubscriptionNotification.event_number) <= until,
        )
        .order_by(col(SubscriptionNotification.event_number))
        .limit(MAX_EVENTS_PER_QUERY)
    ).all()
    patients = [r.patient_id for r in rows if r.patient_id] if content != "empty" else []
    record_success(session, ctx, status_code=200, patient_ids=patients)
    return notification_bundle(
        subscription, base=subscription.fhir_base, kind="query-event", events=list(rows), content=content, now=now_utc()
    )


def topics(canonical_base: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The topics as Basic, by _id and code (`SubscriptionTopic`, or `<system>|SubscriptionTopic`)."""
    found = [topic_basic(t, canonical_base) for t in TOPICS]
    for name, value in params:
        if name == "_id":
            found = [b for b in found if b["id"] in value.split(",")]
        elif name == "code":
            found = [b for b in found if "SubscriptionTopic" in [v.rpartition("|")[2] for v in value.split(",")]]
    return found


def topic(canonical_base: str, basic_id: str) -> dict[str, Any]:
    found = topic_by_basic_id(basic_id)
    if found is None:
        raise RecordNotFound("Basic", basic_id)
    return topic_basic(found, canonical_base)


def as_resource(subscription: Subscription) -> dict[str, Any]:
    resource = {
        **subscription.resource,
        "resourceType": "Subscription",
        "id": subscription.id,
        "meta": {
            "lastUpdated": subscription.updated_at.isoformat(),
            "profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"],
        },
        "status": subscription.status,
    }
    if subscription.error:
        resource["error"] = subscription.error
    return resource


def _number(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise invalid(name, f"{value!r} is not an event number")
    return int(value)


def _audit(session: Session, ctx: RequestContext, subscription_id: str | None, status_code: int) -> None:
    if ctx.intent is not None:
        ctx.intent.record_id = subscription_id
    record_success(session, ctx, status_code=status_code)
