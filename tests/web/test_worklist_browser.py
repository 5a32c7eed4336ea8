"""A coordinator's morning on the demo tenant, in headless Chromium against a live server (issue #21, part 1):
open the worklist, find the at-risk patient with the oldest open urgent finding at the top, log a call ("no
answer"), snooze another task, escalate a third to a clinician who then sees it on their own list, and find a
patient in the caseload by MRN and by a name typed with a wrong accent. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.auth.tokens import mint_dev_token
from service.demo import generate_demo_tenant
from service.demo_loader import load_demo_tenant
from service.settings import Settings
from tests.builders import API
from tests.conftest import project_root
from tests.live_server import serve
from tests.web.chromium import chromium_browser

SCREENSHOTS = project_root() / "docs" / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def _sign_in(chromium: Any, base_url: str, token: str) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    page = context.new_page()
    page.goto("/sign-in")
    page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")
    return page


def test_a_coordinators_morning_on_the_demo_tenant(
    chromium: Any, web_app: FastAPI, web_settings: Settings, new_tenant: Callable[[], str], database_url: str
) -> None:
    tenant = new_tenant()
    load_demo_tenant(
        web_app.state.engine, tenant_id=tenant, demo=generate_demo_tenant(seed=7, patients=36), settings=web_settings
    )
    # The demo sign-in's subjects: the loader links them to the first coordinator and the first psychiatrist.
    coordinator = mint_dev_token(web_settings, tenant=tenant, role="coordinator", subject="demo-coordinator")
    clinician = mint_dev_token(web_settings, tenant=tenant, role="clinician", subject="demo-clinician")
    api = TestClient(web_app)
    listed = api.get(f"{API}/worklist", headers={"Authorization": f"Bearer {coordinator}"}).json()
    urgent = [t for t in listed["tasks"] if t["tier"] == "urgent"]
    assert urgent, "the demo coordinator has patients with an open urgent finding"
    oldest = min(urgent, key=lambda t: t["since"])
    others = [t for t in listed["tasks"] if t["tier"] != "urgent"]
    assert len(others) >= 2, "the demo coordinator has overdue or due-today tasks to snooze and escalate"

    with serve(web_app) as base_url:
        page = _sign_in(chromium, base_url, coordinator)
        page.get_by_role("link", name="Worklist").click()
        page.wait_for_url("**/worklist")
        assert page.get_by_role("heading", name="Worklist").is_visible()
        if database_url.startswith("sqlite"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "worklist.png"), full_page=False)

        # The top of the list: the at-risk patient whose urgent finding has been open longest, its age in words.
        top = page.locator("li.task").first
        assert "task-urgent" in (top.get_attribute("class") or "")
        assert oldest["patient_name"] in top.inner_text() and f"open {oldest['age']}" in top.inner_text()
        assert oldest["message"] in top.inner_text()

        # A call that nobody answered.
        top.locator("summary", has_text="Log outreach").click()
        top.get_by_label("Channel").select_option("phone")
        top.get_by_label("Outcome").select_option("no_answer")
        top.get_by_label("What happened").fill("rang the mobile twice")
        top.get_by_role("button", name="Log outreach").click()
        page.wait_for_url("**notice=outreach")
        assert page.get_by_role("status").first.inner_text() == "Outreach logged."
        top = page.locator("li.task").first
        assert "Phone — No answer" in top.inner_text() and "rang the mobile twice" in top.inner_text()

        # Snooze another task until tomorrow: it leaves today's list.
        snoozed, escalated = others[0], others[1]
        card = page.locator("li.task", has=page.locator(f"input[name=task_id][value='{snoozed['id']}']")).first
        card.locator("summary", has_text="Snooze").click()
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        card.get_by_label("Until").fill(tomorrow)
        card.get_by_label("Reason").fill("patient asked to be called back tomorrow")
        card.get_by_role("button", name="Snooze").click()
        page.wait_for_url("**notice=snoozed")
        assert page.locator(f"input[name=task_id][value='{snoozed['id']}']").count() == 0
        assert "1 snoozed" in page.locator("p.summary").inner_text()

        # Escalate a third to the psychiatrist.
        card = page.locator("li.task", has=page.locator(f"input[name=task_id][value='{escalated['id']}']")).first
        card.locator("summary", has_text="Escalate").click()
        card.get_by_label("Clinician", exact=True).select_option(label="Adeyemi, Tola (psychiatrist)")
        card.get_by_label("Note for the clinician").fill("scores rising; please review the plan")
        card.get_by_role("button", name="Escalate").click()
        page.wait_for_url("**notice=escalated")
        card = page.locator("li.task", has=page.locator(f"input[name=task_id][value='{escalated['id']}']")).first
        assert "Escalated to Adeyemi, Tola" in card.inner_text()

        # Find a patient in the caseload by MRN, and by a name typed with a wrong accent.
        patient = api.get(f"{API}/patients/{oldest['patient_id']}", headers={"Authorization": f"Bearer {coordinator}"})
        family = patient.json()["family_name"]
        for typed in (oldest["mrn"], family.replace("a", "á", 1).replace("e", "é", 1).upper()):
            page.goto("/")
            page.get_by_label("Find a patient").fill(typed)
            page.get_by_role("button", name="Apply filters").click()
            page.wait_for_url("**q=*")
            assert oldest["patient_name"] in page.locator("table.registry tbody").inner_text(), typed
        page.context.close()

        # The clinician sees the escalation on their own list.
        page = _sign_in(chromium, base_url, clinician)
        page.goto("/worklist")
        assert page.get_by_role("link", name="Escalated to me").get_attribute("aria-current") == "true"
        cards = page.locator("li.task")
        assert cards.count() == 1
        assert escalated["patient_name"] in cards.first.inner_text()
        assert "scores rising; please review the plan" in cards.first.inner_text()
        page.context.close()
