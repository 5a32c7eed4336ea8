"""Shared pieces of the EHR-sync peer tests: an app whose settings allow 127.0.0.1 targets, record pushing,
draining the outbox, and checking the peer's copies."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service.app import create_app
from service.auth.tokens import mint_dev_token
from service.clock import now_utc
from service.db.unit_of_work import unit_of_work
from service.outbox import OPEN_STATUSES, OutboxMessage
from service.settings import Settings
from service.sync.capabilities import CapabilityCache, decide, parse_capabilities
from service.sync.planning import RecordPlan, outgoing_body, plan_for_target
from service.sync.processing import Processor, WorkerStats
from service.sync.records import PlannedResource
from service.sync.worker import run_worker
from service.tenants import register_tenant
from tests.builders import (
    ApiDriver,
    administration_body,
    cbt_body,
    enrollment_body,
    questionnaire_body,
)
from tests.conftest import make_settings

LOOPBACK_HOSTS = ["127.0.0.1"]
PUSH_KINDS = ["patients", "enrollments", "ketamine-administrations", "cbt-sessions", "questionnaire-responses"]
# Sent from an enrollment's plan status (issue #20): its urgent findings (Communications and Flags) and its note.
ALERT_KINDS = ["urgent-findings", "progress-notes"]


def with_alerts(records: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The records, and each enrollment's urgent findings and progress note (rows named by the enrollment)."""
    return records + [(kind, rid) for rkind, rid in records if rkind == "enrollments" for kind in ALERT_KINDS]


class SyncApp:
    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.engine: Engine = client.app.state.engine  # type: ignore[attr-defined]

    def tenant(self) -> str:
        tenant_id = f"t-{uuid.uuid4().hex[:12]}"
        with unit_of_work(self.engine) as session:
            register_tenant(session, tenant_id=tenant_id, name=f"Sync test {tenant_id}")
        return tenant_id

    def driver(self, tenant_id: str, role: str = "clinician") -> ApiDriver:
        token = mint_dev_token(self.settings, tenant=tenant_id, role=role)  # type: ignore[arg-type]
        return ApiDriver(self.client, {"Authorization": f"Bearer {token}"})

    def target(self, tenant_id: str, base_url: str, **overrides: Any) -> str:
        body = {
            "name": f"peer {uuid.uuid4().hex[:6]}",
            "base_url": base_url,
            "push": PUSH_KINDS,
            "requests_per_second": 100,
            **overrides,
        }
        return str(self.driver(tenant_id, "admin").create("sync/targets", body)["id"])


def sync_app_fixture() -> Callable[..., Any]:
    @pytest.fixture(scope="module")
    def sync_app(database_url: str) -> Iterator[SyncApp]:
        settings = make_settings(database_url, sync_allowed_hosts=LOOPBACK_HOSTS, sync_require_https=False)
        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield SyncApp(client, settings)

    return sync_app


def push_mixed_records(api: ApiDriver, count: int) -> list[tuple[str, str]]:
    """`count` records of every pushed kind, a patient first and then its records (kind, id), in write order."""
    records: list[tuple[str, str]] = []
    builders = [
        ("enrollments", enrollment_body),
        ("ketamine-administrations", administration_body),
        ("cbt-sessions", cbt_body),
        ("questionnaire-responses", questionnaire_body),
    ]
    patient_id = ""
    for n in range(count):
        if n % (len(builders) + 1) == 0:
            patient_id = api.patient()
            records.append(("patients", patient_id))
            continue
        kind, build = builders[n % (len(builders) + 1) - 1]
        records.append((kind, str(api.create(kind, build(patient_id))["id"])))
    return records


def drain(
    sync_app: SyncApp,
    tenant_id: str,
    *,
    rounds: int = 40,
    processor: Processor | None = None,
    fast_forward: bool = True,
) -> WorkerStats:
    """Run the worker until no row of the tenant is open, moving failed rows' retry time to now between rounds
    (the test's stand-in for waiting out the backoff)."""
    total = WorkerStats()
    for _ in range(rounds):
        stats = run_worker(
            sync_app.engine,
            sync_app.settings,
            worker_id=f"test-{uuid.uuid4().hex[:6]}",
            stop_event=threading.Event(),
            once=True,
            tenant_id=tenant_id,
            processor=processor or Processor(sync_app.engine, sync_app.settings, "unused"),
            lease_seconds=60,
        )
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        if processor is not None:
            processor.stats = WorkerStats()
            processor.http = httpx.Client(timeout=10, follow_redirects=False, trust_env=False)
        with Session(sync_app.engine) as session:
            open_rows = session.exec(
                select(OutboxMessage).where(
                    col(OutboxMessage.tenant_id) == tenant_id, col(OutboxMessage.status).in_(OPEN_STATUSES)
                )
            ).all()
            if not open_rows:
                return total
            if fast_forward:
                session.execute(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.tenant_id) == tenant_id, col(OutboxMessage.status) == "failed")
                    .values(next_attempt_at=now_utc())
                )
                session.commit()
    raise AssertionError(f"outbox of {tenant_id} still open after {rounds} rounds")


def outbox_rows(engine: Engine, tenant_id: str) -> list[OutboxMessage]:
    with Session(engine) as session:
        query = select(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant_id).order_by(col(OutboxMessage.id))
        return list(session.exec(query))


def peer_copies(peer: httpx.Client, resource: PlannedResource, all_qr: list[dict[str, Any]] | None) -> list[Any]:
    """The peer's resources carrying this resource's identifier (searched directly, not through our code)."""
    if resource.resource_type == "QuestionnaireResponse":  # sekmet cannot search it: look through all of them
        assert all_qr is not None
        return [r for r in all_qr if (r.get("identifier") or {}).get("value") == resource.identifier_value]
    response = peer.get(resource.resource_type, params={"identifier": resource.identifier_query})
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry") or []]


def all_resources(peer: httpx.Client, resource_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = f"{resource_type}?_count=1000"
    while url:
        page = peer.get(url).json()
        found += [e["resource"] for e in page.get("entry") or [] if e.get("search", {}).get("mode") == "match"]
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    return found


def check_peer_holds_exactly_one_copy(
    sync_app: SyncApp,
    peer: httpx.Client,
    tenant_id: str,
    target_id: str,
    records: list[tuple[str, str]],
    capability_statement: dict[str, Any],
) -> dict[str, int]:
    """Every resource our mapping makes for every record is at the peer exactly once and equals what we send
    (apart from the id and meta the peer owns). Returns counts: resources checked, duplicates."""
    capabilities = parse_capabilities(capability_statement)
    all_qr = all_resources(peer, "QuestionnaireResponse")
    checked = duplicates = 0
    with Session(sync_app.engine) as session:
        for kind, record_id in records:
            if decide(kind, capabilities).mapping == "not_supported":
                continue
            [planned] = plan_for_target(
                session,
                tenant_id=tenant_id,
                target_id=target_id,
                rows=[(kind, record_id)],
                capabilities=capabilities,
                canonical_base=sync_app.settings.canonical_base,
                code_map={},
            )
            assert isinstance(planned, tuple) and isinstance(planned[0], RecordPlan), planned
            plan, known, delivered = planned
            assert isinstance(plan, RecordPlan)
            for resource in plan.resources:
                copies = peer_copies(peer, resource, all_qr)
                checked += 1
                duplicates += max(len(copies) - 1, 0)
                assert len(copies) == 1, (kind, record_id, resource.role, len(copies))
                copy = copies[0]
                remote = delivered[resource.role]
                assert copy["id"] == remote.remote_id
                expected = outgoing_body(resource, known, remote.remote_id)
                held = {k: v for k, v in copy.items() if k != "meta"}
                differ = sorted(k for k in held.keys() | expected.keys() if held.get(k) != expected.get(k))
                assert held == expected, (kind, resource.role, differ)
    return {"resources": checked, "duplicates": duplicates}


def seeded_cache(target_id: str, base_url: str, statement: dict[str, Any]) -> CapabilityCache:
    cache = CapabilityCache()
    cache.get(target_id, base_url, lambda: statement)
    return cache


def pull_cache(target_id: str, sekmet: Any) -> CapabilityCache:
    """sekmet's CapabilityStatement plus what it does but does not declare: QuestionnaireResponse is searched (with
    no parameter but `_count`), so a pull may ask for them the one way sekmet answers."""
    statement = sekmet.metadata()
    statement["rest"][0]["resource"].append(
        {
            "type": "QuestionnaireResponse",
            "interaction": [{"code": "read"}, {"code": "create"}, {"code": "search-type"}],
            "searchParam": [{"name": "_count", "type": "number"}],
        }
    )
    return seeded_cache(target_id, sekmet.base_url, statement)
