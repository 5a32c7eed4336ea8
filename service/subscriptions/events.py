"""Raising topic events where the projection writes a resource version, and numbering them per subscription.

The projection (service/projection/writes.py) tells `note_written` what it wrote; the topics a version raises
(topics.raised_topics) become events at the end of the unit of work (`UnitOfWork.at_commit`: after its last refresh,
so a Bundle's patient raises its plan status change once, and an entry whose savepoint rolled back raises nothing).
Each matching subscription's counter (`events_since_start`) is incremented by one UPDATE … RETURNING, which holds
that subscription's row until the commit: numbers are contiguous and follow commit order, so a subscriber detects
a gap by number. Handshakes and heartbeats are queued here too; the sync worker sends them all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.db.memo import remembered
from service.db.unit_of_work import UnitOfWork, unit_of_work
from service.subscriptions.tables import Subscription, SubscriptionNotification
from service.subscriptions.topics import FOCUS_TYPES, Topic, raised_topics

# Subscriptions whose events are numbered and kept: a requested one waits for its handshake, an errored one can
# still catch up by $events. `off` (deleted or ended) raises nothing.
LIVE = ("requested", "active", "error")
OPEN = ("pending", "in_flight", "failed")


@dataclass(frozen=True)
class Written:
    """One resource version the projection wrote (body None: a deleted version), with the one it replaced."""

    resource_type: str
    resource_id: str
    patient_id: str | None
    body: dict[str, Any] | None
    previous: dict[str, Any] | None


def note_written(session: Session, tenant_id: str, written: list[Written]) -> None:
    """What a projection wrote: the events it raises are recorded before the unit commits (or now, outside one).
    A tenant without a live subscription costs one query per unit of work."""
    live = _live(session, tenant_id)
    if not live:
        return
    topics = {topic for _, topic, _, _ in live}
    raised = [
        (topic, version)
        for version in written
        if version.resource_type in FOCUS_TYPES
        for topic in raised_topics(version.resource_type, version.body, version.previous)
        if topic.name in topics
    ]
    for topic, version in raised:
        key = ("subscription-event", tenant_id, topic.name, version.resource_type, version.resource_id)

        def step(unit: Session, topic: Topic = topic, version: Written = version) -> None:
            record_event(unit, tenant_id, topic, version)

        if isinstance(session, UnitOfWork):
            session.at_commit(key, step)
        else:
            step(session)


LiveSubscription = tuple[str, str, str | None, str]  # id, topic name, patient filter, status


def _live(session: Session, tenant_id: str) -> list[LiveSubscription]:
    """The tenant's live subscriptions, in id order, looked up once per unit of work (they change only by requests
    of their own and by the worker, in other units)."""

    def look_up() -> list[LiveSubscription]:
        rows = session.exec(
            select(Subscription.id, Subscription.topic, Subscription.patient_filter, Subscription.status)
            .where(col(Subscription.tenant_id) == tenant_id, col(Subscription.status).in_(LIVE))
            .order_by(col(Subscription.id))
        ).all()
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    return remembered(session, ("live subscriptions", tenant_id), look_up)


def record_event(session: Session, tenant_id: str, topic: Topic, version: Written) -> int:
    """One event for every live subscription of the tenant to `topic` whose filter matches; returns how many.
    The rows are locked in id order, so two writers cannot deadlock on them."""
    now = now_utc()
    count = 0
    for subscription_id, topic_name, patient_filter, status in _live(session, tenant_id):
        if topic_name != topic.name or (patient_filter is not None and patient_filter != version.patient_id):
            continue
        # The status as of the lock, not as looked up: a handshake answered meanwhile has made it active.
        number, status = session.execute(
            update(Subscription)
            .where(col(Subscription.id) == subscription_id)
            .values(events_since_start=col(Subscription.events_since_start) + 1)
            .returning(col(Subscription.events_since_start), col(Subscription.status))
        ).one()
        session.add(
            SubscriptionNotification(
                tenant_id=tenant_id,
                subscription_id=subscription_id,
                type="event-notification",
                event_number=int(number),
                focus_type=version.resource_type,
                focus_id=version.resource_id,
                focus=version.body,
                patient_id=version.patient_id,
                occurred_at=now,
                status="pending" if status == "active" else "held",
                next_attempt_at=now,
            )
        )
        count += 1
    return count


def queue_handshake(session: Session, subscription: Subscription) -> None:
    now = now_utc()
    session.add(_control(subscription, "handshake", now))


def release_held(session: Session, subscription_id: str) -> None:
    """After the handshake: the events raised while the subscription waited for it are sent, in order."""
    session.execute(
        update(SubscriptionNotification)
        .where(
            col(SubscriptionNotification.subscription_id) == subscription_id,
            col(SubscriptionNotification.status) == "held",
        )
        .values(status="pending", next_attempt_at=now_utc())
    )


def queue_heartbeats(session: Session, now: datetime | None = None) -> int:
    """A heartbeat for every active subscription with a heartbeat period that sent nothing for that long and has
    nothing waiting to go; subscriptions past their `end` are turned off. Returns how many heartbeats were queued.
    Called by the sweep (service/sweep.py)."""
    now = now or now_utc()
    session.execute(
        update(Subscription)
        .where(col(Subscription.end).is_not(None), col(Subscription.end) <= now, col(Subscription.status).in_(LIVE))
        .values(status="off", updated_at=now)
    )
    candidates = session.exec(
        select(Subscription).where(
            col(Subscription.status) == "active", col(Subscription.heartbeat_seconds).is_not(None)
        )
    ).all()
    waiting = set(
        session.exec(
            select(SubscriptionNotification.subscription_id).where(col(SubscriptionNotification.status).in_(OPEN))
        ).all()
    )
    queued = 0
    for subscription in candidates:
        assert subscription.heartbeat_seconds is not None
        last = subscription.last_sent_at or subscription.created_at
        if subscription.id in waiting or last + timedelta(seconds=subscription.heartbeat_seconds) > now:
            continue
        session.add(_control(subscription, "heartbeat", now))
        queued += 1
    return queued


def sweep_heartbeats(engine: Engine, now: datetime | None = None) -> int:
    """The sweep's part: heartbeats due, ended subscriptions off (one unit of work)."""
    with unit_of_work(engine) as session:
        return queue_heartbeats(session, now)


def _control(subscription: Subscription, kind: str, now: datetime) -> SubscriptionNotification:
    return SubscriptionNotification(
        tenant_id=subscription.tenant_id,
        subscription_id=subscription.id,
        type=kind,
        occurred_at=now,
        status="pending",
        next_attempt_at=now_utc(),  # due at once, whatever moment the sweep was judging
    )


def new_subscription_id() -> str:
    return str(uuid.uuid4())
