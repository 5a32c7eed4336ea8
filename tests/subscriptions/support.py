"""A sekmet-fhir subscriber for Tandem's subscriptions, and the requests a subscriber makes.

sekmet-fhir acts as the third-party rest-hook receiver: it serves `/hooks/{peer}/{key}`, reads every backport
notification with its own parser (sekmet.subscriptions.backport.parse_notification) and logs the exchange in its
traffic table (the request body as sent). `received` reads that log back through the same parser, so what the
tests check is what the subscriber understood, not what Tandem meant to send.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sekmet.subscriptions.backport import EXT_CONTENT, EXT_FILTER, EXT_HEARTBEAT, PROFILE, parse_notification
from sqlalchemy import Engine

from service.settings import Settings
from service.sync.subscription_delivery import deliver_due
from service.sync.worker import run_worker
from tests.builders import PHQ9_ITEMS, ApiDriver, enrollment_body, questionnaire_body
from tests.ehr_peer.sekmet_server import SekmetServer

HOOK_TOKEN = "tandem-subscriber-hook-token"
BASE = "https://tandem.example.org/fhir"  # the test settings' canonical base
TOPIC = {name: f"{BASE}/SubscriptionTopic/{name}" for name in ("urgent-reason-raised", "plan-status-changed")}
TOPIC["questionnaire-scored"] = f"{BASE}/SubscriptionTopic/questionnaire-scored"


def hook_url(root: str) -> tuple[str, str]:
    key = secrets.token_hex(6)
    return f"{root}/hooks/tandem/{key}", key


def subscription(
    topic: str,
    endpoint: str,
    *,
    content: str = "id-only",
    patient_id: str | None = None,
    heartbeat: int | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A backport-subscription as a subscriber writes it from the IG (not from Tandem's code)."""
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "meta": {"profile": [PROFILE]},
        "status": "requested",
        "reason": "push urgent findings to the EHR",
        "criteria": TOPIC.get(topic, topic),
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": EXT_CONTENT, "valueCode": content}]},
            "header": [f"Authorization: Bearer {HOOK_TOKEN}"],
        },
    }
    if patient_id is not None:
        resource["_criteria"] = {"extension": [{"url": EXT_FILTER, "valueString": f"patient=Patient/{patient_id}"}]}
    if heartbeat is not None:
        resource["channel"]["extension"] = [{"url": EXT_HEARTBEAT, "valueUnsignedInt": heartbeat}]
    resource.update(overrides)
    return resource


def received(sekmet: SekmetServer, key: str) -> list[dict[str, Any]]:
    """What the subscriber received on one hook, oldest first, as sekmet parsed it (with the raw Bundle)."""
    with sqlite3.connect(sekmet.workdir / "data" / "sekmet.db") as db:
        rows = db.execute(
            "SELECT req_body FROM traffic WHERE url LIKE ? AND method = 'POST' ORDER BY id", (f"%/hooks/tandem/{key}",)
        ).fetchall()
    found = []
    for (body,) in rows:
        bundle = json.loads(body)
        note = parse_notification(bundle)
        assert note is not None, f"sekmet did not read a backport notification: {body[:300]}"
        note["bundle"] = bundle
        note["since_start"] = status_value(bundle, "events-since-subscription-start")
        found.append(note)
    return found


def status_value(bundle: dict[str, Any], name: str) -> Any:
    parameters = bundle["entry"][0]["resource"]["parameter"]
    value = next(p for p in parameters if p["name"] == name)
    return next(v for k, v in value.items() if k.startswith("value"))


def deliver(engine: Engine, settings: Settings, tenant_id: str) -> None:
    """The sync worker, once, for one tenant (other tests' rows are not ours to send): what is due is sent, EHR
    outbox rows and subscription notifications alike."""
    stop = threading.Event()
    run_worker(engine, settings, worker_id="subscriptions-test", stop_event=stop, once=True, tenant_id=tenant_id)


def deliver_notifications(engine: Engine, settings: Settings, tenant_id: str) -> int:
    """One claim of the tenant's due subscription notifications (the worker's subscription half)."""
    with httpx.Client(follow_redirects=False, trust_env=False) as http:
        return deliver_due(engine, settings, http, "subscriptions-test", tenant_id=tenant_id)


def enrolled_patient(api: ApiDriver) -> str:
    return enrolment(api)[0]


def enrolment(api: ApiDriver) -> tuple[str, str]:
    """A patient enrolled three days ago: (patient id, enrolment id)."""
    patient_id = api.patient()
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    enrollment = api.create("enrollments", enrollment_body(patient_id, start_date=start))
    return patient_id, str(enrollment["id"])


def phq9(patient_id: str, *, item9: int, each: int = 1, days_ago: float = 1) -> dict[str, Any]:
    answers = [{"link_id": i, "value_integer": each} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    authored = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return questionnaire_body(patient_id, answers=answers, authored_at=authored)
