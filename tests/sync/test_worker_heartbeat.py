"""Delivery workers you can see (issue #24, part 3): each worker's heartbeat row, dead detection on a controlled
clock, the readiness command a container's health check runs, and the in-process development worker."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app as cli_app
from service.db import migrations
from service.db.unit_of_work import unit_of_work
from service.settings import get_settings
from service.sync.heartbeat import Heartbeat, live_worker_on, read_workers
from service.sync.tables import WorkerHeartbeat
from service.sync.worker import run_worker
from tests.conftest import create_postgres_database, make_settings
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.sync.sync_harness import LOOPBACK_HOSTS, SyncApp, outbox_rows, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
DEAD_AFTER = 60


def _row(engine: Engine, worker_id: str) -> WorkerHeartbeat:
    with Session(engine) as session:
        found = session.get(WorkerHeartbeat, worker_id)
        assert found is not None, f"no heartbeat row for {worker_id}"
        return found


def _wait_for(check: object, what: str, *, seconds: float = 30) -> None:
    """Poll until check() is true; the deadline only bounds a hung test, nothing is asserted about time."""
    assert callable(check)
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {seconds} s")
        time.sleep(0.05)


def test_a_worker_beats_with_what_it_claimed_and_says_when_it_stopped(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    sync_app.target(tenant, sekmet.base_url, push=["patients"])
    for _ in range(3):
        sync_app.driver(tenant).patient()
    worker_id = f"beat-{uuid.uuid4().hex[:8]}"
    before = datetime.now(UTC)
    stats = run_worker(
        sync_app.engine,
        sync_app.settings,
        worker_id=worker_id,
        stop_event=threading.Event(),
        once=True,
        tenant_id=tenant,
    )
    row = _row(sync_app.engine, worker_id)
    assert stats.claimed == 3 and stats.sent == 3
    assert (row.host, row.pid, row.tenant_id, row.rows_claimed) == (socket.gethostname(), os.getpid(), tenant, 3)
    assert before <= row.started_at <= row.last_beat_at
    assert row.stopped_at is not None and row.stopped_at >= row.last_beat_at - timedelta(seconds=1)
    assert {r.status for r in outbox_rows(sync_app.engine, tenant)} == {"sent"}


def test_the_timer_beats_while_the_loop_is_busy(engine: Engine) -> None:
    """A delivery that holds the loop longer than the interval must not make a live worker read as dead."""
    worker_id = f"timer-{uuid.uuid4().hex[:8]}"
    heartbeat = Heartbeat(engine, worker_id, every_seconds=0.05)
    heartbeat.start()
    try:
        first = _row(engine, worker_id).last_beat_at
        heartbeat.rows_claimed = 7  # the loop claimed rows and is now busy delivering them: no beat() from it
        _wait_for(lambda: _row(engine, worker_id).last_beat_at > first, "a beat from the timer")
        _wait_for(lambda: _row(engine, worker_id).rows_claimed == 7, "the timer to write the claimed count")
        assert _row(engine, worker_id).stopped_at is None
    finally:
        heartbeat.stop()
    assert _row(engine, worker_id).stopped_at is not None


def _heartbeat(engine: Engine, tenant: str, *, beat: datetime, stopped: datetime | None = None) -> str:
    worker_id = f"w-{uuid.uuid4().hex[:8]}"
    with unit_of_work(engine) as session:
        session.add(
            WorkerHeartbeat(
                id=worker_id,
                host="worker-host",
                pid=4242,
                tenant_id=tenant,
                started_at=beat - timedelta(hours=1),
                last_beat_at=beat,
                stopped_at=stopped,
                rows_claimed=5,
            )
        )
    return worker_id


def test_a_worker_is_dead_once_it_has_not_beaten_within_the_interval(engine: Engine, tenant: str) -> None:
    # A clock of our own, a week ahead: the heartbeats other tests write now are a week old at it, not listed.
    now = datetime.now(UTC) + timedelta(days=7)
    live = _heartbeat(engine, tenant, beat=now - timedelta(seconds=DEAD_AFTER))
    dead = _heartbeat(engine, tenant, beat=now - timedelta(seconds=DEAD_AFTER + 1))
    stopped = _heartbeat(engine, tenant, beat=now - timedelta(seconds=5), stopped=now - timedelta(seconds=5))
    forgotten = _heartbeat(engine, tenant, beat=now - timedelta(days=2))
    with Session(engine) as session:
        seen = read_workers(session, tenant, now=now, dead_after_seconds=DEAD_AFTER)
        assert {w.id: w.life for w in seen.workers} == {live: "live", dead: "dead", stopped: "stopped"}
        assert forgotten not in {w.id for w in seen.workers}
        assert (seen.live, seen.waiting, seen.unattended) == (1, 0, False)
        # One second later the live one has missed its interval too.
        later = read_workers(session, tenant, now=now + timedelta(seconds=1), dead_after_seconds=DEAD_AFTER)
        assert {w.id: w.life for w in later.workers}[live] == "dead"
        assert live_worker_on(session, "worker-host", now=now, dead_after_seconds=DEAD_AFTER, worker_id=live)
        assert not live_worker_on(session, "worker-host", now=now, dead_after_seconds=DEAD_AFTER, worker_id=dead)


def test_another_tenants_worker_is_not_listed(engine: Engine, tenant: str, new_tenant: object) -> None:
    assert callable(new_tenant)
    now = datetime.now(UTC) + timedelta(days=7)
    theirs = _heartbeat(engine, new_tenant(), beat=now)
    with Session(engine) as session:
        assert theirs not in {w.id for w in read_workers(session, tenant, now=now, dead_after_seconds=60).workers}


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    monkeypatch.setenv("TANDEM_SYNC_WORKER_DEAD_AFTER_SECONDS", "30")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_worker_ready_answers_for_a_live_worker_on_this_host(cli_env: None, engine: Engine) -> None:
    worker_id = f"ready-{uuid.uuid4().hex[:8]}"
    absent = CliRunner().invoke(cli_app, ["sync", "worker-ready", "--worker-id", worker_id])
    assert absent.exit_code == 1 and "no live delivery worker" in absent.output
    heartbeat = Heartbeat(engine, worker_id, every_seconds=5)
    heartbeat.start()
    try:
        ready = CliRunner().invoke(cli_app, ["sync", "worker-ready", "--worker-id", worker_id])
        assert ready.exit_code == 0, ready.output
        assert f"live: {worker_id}" in ready.output
    finally:
        heartbeat.stop()
    stopped = CliRunner().invoke(cli_app, ["sync", "worker-ready", "--worker-id", worker_id])
    assert stopped.exit_code == 1


def test_the_dead_interval_must_exceed_the_beat(database_url: str) -> None:
    with pytest.raises(ValidationError, match="DEAD_AFTER_SECONDS must exceed"):
        make_settings(database_url, sync_worker_beat_seconds=30, sync_worker_dead_after_seconds=30)


@pytest.fixture
def own_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: the dev worker takes every tenant's due rows, and in the session's shared
    database other tests leave rows for unreachable targets it would work through first."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'dev-worker.db'}"
        migrations.upgrade(url)
        yield url
        return
    url, drop = create_postgres_database()
    try:
        migrations.upgrade(url)
        yield url
    finally:
        drop()


def test_the_development_worker_delivers_a_row_without_a_worker_process(
    own_database: str, sekmet: SekmetServer
) -> None:
    assert make_settings(own_database).dev_worker is False  # off unless asked for (make run asks)
    settings = make_settings(own_database, sync_allowed_hosts=LOOPBACK_HOSTS, sync_require_https=False, dev_worker=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        app = SyncApp(client, settings)
        worker_id = client.app.state.dev_worker.worker_id  # type: ignore[attr-defined]
        tenant = app.tenant()
        app.target(tenant, sekmet.base_url, push=["patients"])
        app.driver(tenant).patient()
        _wait_for(lambda: [r.status for r in outbox_rows(app.engine, tenant)] == ["sent"], "the dev worker")
        assert _row(app.engine, worker_id).stopped_at is None
    # The app's shutdown stops its worker, and the worker says so.
    assert _row(app.engine, worker_id).stopped_at is not None
