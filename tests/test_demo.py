"""The seeded demo generator is deterministic and loads idempotently through the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.demo import generate_demo_tenant
from service.demo_loader import load_demo_tenant
from service.settings import Settings
from tests.builders import API

ANCHOR = date(2026, 11, 1)


def test_same_seed_same_records() -> None:
    first = generate_demo_tenant(seed=3, patients=12, anchor=ANCHOR)
    second = generate_demo_tenant(seed=3, patients=12, anchor=ANCHOR)
    other = generate_demo_tenant(seed=4, patients=12, anchor=ANCHOR)
    dump = lambda demo: [(p.patient.model_dump(), [r.model_dump() for r in p.records]) for p in demo.patients]  # noqa: E731
    assert dump(first) == dump(second)
    assert dump(first) != dump(other)


def test_patients_are_spread_over_the_plan() -> None:
    demo = generate_demo_tenant(seed=7, patients=20, anchor=ANCHOR)
    starts = {p.enrollment.start_date for p in demo.patients}
    assert len(starts) >= 8
    assert {p.enrollment.protocol_id for p in demo.patients} == {"iv-ketamine-cbt", "esketamine-cbt"}
    assert any(p.enrollment.status == "discontinued" for p in generate_demo_tenant(seed=7, patients=36).patients)


def test_loading_twice_adds_nothing(
    client: TestClient, engine: Engine, settings: Settings, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    demo = generate_demo_tenant(seed=11, patients=4, anchor=ANCHOR)
    first = load_demo_tenant(engine, tenant_id=tenant, demo=demo, settings=settings)
    second = load_demo_tenant(engine, tenant_id=tenant, demo=demo, settings=settings)
    assert first.created > 4 * 5
    assert (second.created, second.already_present) == (0, first.created)
    listed = client.get(f"{API}/patients", headers=auth(tenant)).json()["items"]
    assert len(listed) == 4
