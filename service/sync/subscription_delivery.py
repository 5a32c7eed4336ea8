"""Sending subscription notifications (service/subscriptions): claimed, sent and settled like outbox rows.

The same rules as the EHR outbox (leases.py, settling.py): rows are claimed under a lease (`FOR UPDATE SKIP LOCKED`
on PostgreSQL), one subscription's rows go in order (a row waits while an older one of its subscription is open),
a failure is classified by outcomes.failure_from (408/409/429/5xx and no answer: retried with backoff.retry_delay,
honouring Retry-After; other 4xx: dead at once) and a row that failed `sync_max_attempts` times is a dead letter.
A dead event is not lost: the subscriber sees the gap in the event numbers and reads it with $events. The endpoint
is checked by url_safety before every attempt. A handshake that is answered makes the subscription active (and
sends what waited for it); one that goes dead puts the subscription in `error`.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from service.clock import now_utc
from service.db.leased_rows import claim_rows
from service.db.unit_of_work import unit_of_work
from service.errors import InvalidRequest
from service.settings import Settings
from service.subscriptions.events import OPEN, release_held
from service.subscriptions.notifications import notification_bundle
from service.subscriptions.tables import Subscription, SubscriptionNotification
from service.sync.backoff import parse_retry_after, retry_delay
from service.sync.client import Exchange
from service.sync.outcomes import DeliveryFailure, failure_from, transport_failure
from service.sync.url_safety import check_target_url

logger = logging.getLogger("tandem.subscriptions")
N = SubscriptionNotification
DEFAULT_TIMEOUT_SECONDS = 30.0


def claim(
    engine: Engine, worker_id: str, *, limit: int, lease_seconds: int, tenant_id: str | None = None
) -> list[SubscriptionNotification]:
    """Due notifications, oldest first, under our lease; one subscription's go out in order (event numbers)."""
    return claim_rows(
        engine, N, worker_id, now=now_utc(), limit=limit, lease_seconds=lease_seconds,
        in_order_of=("subscription_id",), open_statuses=OPEN, tenant_id=tenant_id,
    )  # fmt: skip


def deliver_due(
    engine: Engine,
    settings: Settings,
    http: httpx.Client,
    worker_id: str,
    *,
    limit: int = 20,
    lease_seconds: int = 120,
    rng: random.Random | None = None,
    tenant_id: str | None = None,
) -> int:
    """Claim and send what is due (tenant_id: only that tenant's); returns how many rows were attempted."""
    rows = claim(engine, worker_id, limit=limit, lease_seconds=lease_seconds, tenant_id=tenant_id)
    for row in rows:
        send(engine, settings, http, worker_id, row, rng=rng)
    return len(rows)


def send(
    engine: Engine,
    settings: Settings,
    http: httpx.Client,
    worker_id: str,
    row: SubscriptionNotification,
    *,
    rng: random.Random | None = None,
) -> str:
    """One attempt at one claimed row; returns its new status."""
    with Session(engine, expire_on_commit=False) as session:  # reads only
        subscription = session.get(Subscription, row.subscription_id)
    ended = subscription is not None and subscription.end is not None and subscription.end <= now_utc()
    if subscription is None or subscription.status == "off" or ended:
        return _settle(engine, worker_id, row, "cancelled", None, None)  # nothing is sent after the end
    failure: DeliveryFailure | None = None
    status_code: int | None = None
    try:
        status_code = _post(settings, http, subscription, row)
    except DeliveryFailure as error:
        failure = error
    return _settle(engine, worker_id, row, None, failure, status_code, settings=settings, rng=rng)


def _post(settings: Settings, http: httpx.Client, subscription: Subscription, row: SubscriptionNotification) -> int:
    try:
        url = check_target_url(
            subscription.endpoint,
            field="channel.endpoint",
            allowed_hosts=settings.sync_allowed_hosts,
            require_https=settings.sync_require_https,
        )
    except InvalidRequest as error:
        reason = error.problems[0].message if error.problems else str(error)
        raise DeliveryFailure(f"refused to contact the endpoint: {reason}", retryable=False) from None
    bundle = notification_bundle(
        subscription, base=subscription.fhir_base, kind=row.type, events=_events(row), now=now_utc()
    )
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    headers.update(_headers(subscription.headers))
    timeout = float(subscription.timeout_seconds or DEFAULT_TIMEOUT_SECONDS)
    what = f"{row.type} to the subscriber"
    try:
        response = http.post(url, json=bundle, headers=headers, timeout=timeout)
    except httpx.HTTPError as error:
        raise transport_failure(error, what, unknown=False) from error
    if not 200 <= response.status_code < 300:
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        exchange = Exchange(response.status_code, response.headers, body)
        raise failure_from(exchange, what)
    return response.status_code


def _events(row: SubscriptionNotification) -> list[SubscriptionNotification]:
    return [row] if row.type == "event-notification" else []


def _headers(lines: list[str]) -> dict[str, str]:
    """channel.header is 'Name: value' per line (R4)."""
    found: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() and value.strip():
            found[name.strip()] = value.strip()
    return found


def _settle(
    engine: Engine,
    worker_id: str,
    row: SubscriptionNotification,
    final: str | None,
    failure: DeliveryFailure | None,
    status_code: int | None,
    *,
    settings: Settings | None = None,
    rng: random.Random | None = None,
) -> str:
    now = now_utc()
    attempts = row.attempts + (0 if final else 1)
    values: dict[str, Any] = {"attempts": attempts, "claimed_by": None, "claimed_until": None}
    if final is not None:
        status = final
    elif failure is None:
        status = "sent"
        values.update(delivered_at=now, last_status_code=status_code, last_error=None)
    else:
        max_attempts = settings.sync_max_attempts if settings is not None else 1
        status = "failed" if failure.retryable and attempts < max_attempts else "dead"
        values.update(last_status_code=failure.status_code, last_error=str(failure)[:1024])
        if status == "failed":
            delay = retry_delay(attempts, retry_after=parse_retry_after(failure.retry_after), rng=rng)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
    values["status"] = status
    with unit_of_work(engine) as session:
        settled = session.execute(update(N).where(col(N.id) == row.id, col(N.claimed_by) == worker_id).values(**values))
        if not getattr(settled, "rowcount", 0):
            return "lost"  # our lease ran out and another worker has the row
        _follow(session, row, status, failure, now)
    return status


def _follow(
    session: Session, row: SubscriptionNotification, status: str, failure: DeliveryFailure | None, now: Any
) -> None:
    """What the subscription learns from the attempt: sent (and, for a handshake, active) or in error."""
    subscription_id = row.subscription_id
    if status == "sent":
        changes: dict[str, Any] = {"last_sent_at": now, "updated_at": now}
        if row.type == "handshake":
            changes.update(status="active", error=None)
        # The subscription's row first: a writer numbering an event holds it until its commit, so the held
        # events released below include that one (record_event reads the status under the same lock).
        session.execute(
            update(Subscription)
            .where(col(Subscription.id) == subscription_id, col(Subscription.status) != "off")
            .values(**changes)
        )
        if row.type == "handshake":
            release_held(session, subscription_id)
    elif status == "dead":
        error = f"{row.type} could not be delivered: {failure}"[:1024]
        changes = {"error": error, "updated_at": now}
        if row.type == "handshake":
            changes["status"] = "error"
        session.execute(
            update(Subscription)
            .where(col(Subscription.id) == subscription_id, col(Subscription.status) != "off")
            .values(**changes)
        )
