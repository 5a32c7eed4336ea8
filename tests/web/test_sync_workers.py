"""The sync page's delivery workers (issue #24, part 3): live and dead workers, and the warning when messages wait
with no live worker to send them. The page's clock is moved a week ahead, so the heartbeats other tests write
(at the real now) are too old to be listed, and this test's own rows decide what the page says."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from service.auth.tokens import mint_dev_token
from service.db.unit_of_work import unit_of_work
from service.settings import Settings
from service.sync.tables import WorkerHeartbeat
from tests.builders import ApiDriver, sync_target_body
from tests.live_server import serve
from tests.web.conftest import Browser
from tests.web.test_browser import chromium  # noqa: F401 (the module's browser fixture)

AHEAD = datetime.now(UTC) + timedelta(days=7)


@pytest.fixture(autouse=True)
def page_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.web.sync_page.now_utc", lambda: AHEAD)


def _worker(engine: Engine, tenant: str, *, seconds_since_beat: int) -> str:
    worker_id = f"host-{uuid.uuid4().hex[:6]}:4242:abc123"
    with unit_of_work(engine) as session:
        session.add(
            WorkerHeartbeat(
                id=worker_id,
                host="worker-host",
                pid=4242,
                tenant_id=tenant,
                started_at=AHEAD - timedelta(hours=2),
                last_beat_at=AHEAD - timedelta(seconds=seconds_since_beat),
                rows_claimed=17,
            )
        )
    return worker_id


def _waiting_message(api_as: Callable[..., ApiDriver], tenant: str) -> None:
    api_as(tenant, "admin").create("sync/targets", sync_target_body(name="Epic test", push=["patients"]))
    api_as(tenant).patient()


def _state_of(page: str, worker_id: str) -> str:
    row = re.search(rf"<tr>\s*<td class=\"mono\">{re.escape(worker_id)}.*?</tr>", page, re.S)
    assert row, f"{worker_id} not listed"
    found = re.search(r"<td class=\"[a-z]*\">(live|dead|stopped)", row.group(0))
    assert found
    return found.group(1)


def test_messages_waiting_with_no_live_worker_are_a_warning(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    _waiting_message(api_as, tenant)
    dead = _worker(web_engine, tenant, seconds_since_beat=3600)
    b = browser()
    b.sign_in(tenant, "admin")
    page = b.get("/sync").text
    assert 'id="no-live-worker"' in page
    assert "1 message waiting and no live delivery worker" in page
    assert _state_of(page, dead) == "dead"
    assert "0 live" in page


def test_a_live_worker_is_listed_and_there_is_no_warning(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    _waiting_message(api_as, tenant)
    live = _worker(web_engine, tenant, seconds_since_beat=5)
    dead = _worker(web_engine, tenant, seconds_since_beat=3600)
    b = browser()
    b.sign_in(tenant, "admin")
    page = b.get("/sync").text
    assert 'id="no-live-worker"' not in page
    assert (_state_of(page, live), _state_of(page, dead)) == ("live", "dead")
    assert "1 live" in page and "1 message due now" in page


def test_no_warning_when_nothing_waits(browser: Callable[..., Browser], tenant: str) -> None:
    b = browser()
    b.sign_in(tenant, "admin")
    page = b.get("/sync").text
    assert 'id="no-live-worker"' not in page
    assert "No delivery worker has beaten in the last day." in page


@pytest.mark.browser
def test_chromium_shows_the_warning_and_the_dead_worker(
    chromium: Any,  # noqa: F811
    web_app: FastAPI,
    web_settings: Settings,
    api_as: Callable[..., ApiDriver],
    tenant: str,
    web_engine: Engine,
) -> None:
    _waiting_message(api_as, tenant)
    dead = _worker(web_engine, tenant, seconds_since_beat=600)
    token = mint_dev_token(web_settings, tenant=tenant, role="admin", subject="it-admin")
    with serve(web_app) as base_url:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
        page = context.new_page()
        page.goto("/sign-in")
        page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/**")
        page.goto("/sync")
        warning = page.get_by_role("alert")
        assert "no live delivery worker" in warning.inner_text()
        assert warning.is_visible()
        workers = page.get_by_role("region", name="Delivery workers")
        row = workers.get_by_role("row").filter(has_text=dead)
        assert "dead" in row.inner_text()
        context.close()
