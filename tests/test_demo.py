"""The seeded demo generator is deterministic and loads idempotently through the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from service.demo import CBT_HOUR, generate_demo_tenant
from service.demo_loader import load_demo_tenant
from service.records.cbt import CbtSessionCreate
from service.settings import Settings
from tests.builders import API
from tests.examples_budget import examples

NOW = datetime(2026, 11, 1, 23, 59, tzinfo=UTC)


def test_same_seed_same_records() -> None:
    first = generate_demo_tenant(seed=3, patients=12, now=NOW)
    second = generate_demo_tenant(seed=3, patients=12, now=NOW)
    other = generate_demo_tenant(seed=4, patients=12, now=NOW)
    dump = lambda demo: [(p.patient.model_dump(), [r.model_dump() for r in p.records]) for p in demo.patients]  # noqa: E731
    assert dump(first) == dump(second)
    assert dump(first) != dump(other)


def test_patients_are_spread_over_the_plan() -> None:
    demo = generate_demo_tenant(seed=7, patients=20, now=NOW)
    starts = {p.enrollment.start_date for p in demo.patients}
    assert len(starts) >= 8
    assert {p.enrollment.protocol_id for p in demo.patients} == {"iv-ketamine-cbt", "esketamine-cbt"}
    assert any(p.enrollment.status == "discontinued" for p in generate_demo_tenant(seed=7, patients=36).patients)


def test_loading_twice_adds_nothing(
    client: TestClient, engine: Engine, settings: Settings, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    demo = generate_demo_tenant(seed=11, patients=4, now=NOW)
    first = load_demo_tenant(engine, tenant_id=tenant, demo=demo, settings=settings)
    second = load_demo_tenant(engine, tenant_id=tenant, demo=demo, settings=settings)
    assert first.created > 4 * 5
    assert (second.created, second.already_present) == (0, first.created)
    listed = client.get(f"{API}/patients", headers=auth(tenant)).json()["items"]
    assert len(listed) == 4


# Times a record says something happened (planned times may lie ahead).
HAPPENED_AT = (
    "authored_at",
    "started_at",
    "ended_at",
    "taken_at",
    "rems_form_submitted_at",
    "actual_start",
    "actual_end",
)


def _happened(value: object) -> list[datetime]:
    """Every time in a record's dump that says something happened, at any depth (vital signs are nested)."""
    if isinstance(value, dict):
        return [
            t
            for key, inner in value.items()
            for t in ([inner] if key in HAPPENED_AT and isinstance(inner, datetime) else _happened(inner))
        ]
    if isinstance(value, list):
        return [t for inner in value for t in _happened(inner)]
    return []


@pytest.mark.parametrize("hour", [0, 7, 10, 12, 14, 15, 23])
def test_nothing_is_recorded_as_having_happened_after_now(hour: int) -> None:
    now = datetime(2026, 12, 2, hour, 5, tzinfo=UTC)
    demo = generate_demo_tenant(seed=7, patients=36, now=now)
    records = [r for p in demo.patients for r in p.records]
    times = [t for r in records for t in _happened(r.model_dump())]
    assert times and max(times) <= now
    sessions = [r for r in records if isinstance(r, CbtSessionCreate)]
    today = [s for s in sessions if s.planned_start.date() == now.date()]
    assert today, "the seed has CBT sessions on the day itself"
    # A session later today is planned, not attended; one that ended before now has happened.
    assert all((s.status == "planned") == (now < s.planned_start + timedelta(minutes=50)) for s in today)
    assert all(s.status != "planned" for s in sessions if s.planned_start.date() < now.date())
    assert all(s.planned_start.hour == CBT_HOUR for s in sessions)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
)
def test_no_seed_and_no_moment_dates_an_attended_session_in_the_future(
    seed: int, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The generator's default moment is the service clock (service/clock.py): fixed here, so any instant of the
    # day — 07:00 before a 14:00 session, 14:30 during it — is tried, as a coordinator would open the demo.
    monkeypatch.setattr("service.demo.now_utc", lambda: now)
    demo = generate_demo_tenant(seed=seed, patients=12)
    records = [r for p in demo.patients for r in p.records]
    assert all(t <= now for r in records for t in _happened(r.model_dump()))
    sessions = [r for r in records if isinstance(r, CbtSessionCreate)]
    attended = [s for s in sessions if s.status == "attended"]
    assert all(s.actual_end is not None and s.actual_end <= now for s in attended)
    assert all(s.status == "planned" for s in sessions if s.planned_start + timedelta(minutes=50) > now)
