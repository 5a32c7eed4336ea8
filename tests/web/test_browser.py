"""The pages in a real browser: headless Chromium (Debian's) driving a uvicorn server on loopback.

Signs in, filters the caseload to at-risk patients, opens one with a PHQ-9 item-9 flag, acknowledges it, and saves
screenshots of the caseload and the patient page (docs/screenshots/).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.auth.tokens import mint_dev_token
from service.demo import generate_demo_tenant
from service.demo_loader import load_demo_tenant
from service.settings import Settings
from tests.builders import API, patient_body
from tests.conftest import project_root
from tests.live_server import serve
from tests.web.chromium import chromium_browser

SCREENSHOTS = project_root() / "docs" / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def test_coordinator_flow_in_a_real_browser(
    chromium: Any,
    web_app: FastAPI,
    web_settings: Settings,
    new_tenant: Callable[[], str],
    database_url: str,
) -> None:
    tenant = new_tenant()
    load_demo_tenant(
        web_app.state.engine, tenant_id=tenant, demo=generate_demo_tenant(seed=7, patients=36), settings=web_settings
    )
    token = mint_dev_token(web_settings, tenant=tenant, role="clinician", subject="dr-demo")
    save = database_url.startswith("sqlite")  # one set of screenshots is enough
    with serve(web_app) as base_url:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
        page = context.new_page()
        page.goto("/")
        assert "/sign-in" in page.url
        page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/")
        assert page.get_by_role("heading", name="Caseload").is_visible()
        if save:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "caseload.png"), full_page=False)

        page.get_by_label("Status", exact=True).select_option("at_risk")
        page.get_by_label("Open flag").select_option("phq9_item9_positive")
        page.get_by_role("button", name="Apply filters").click()
        page.wait_for_url("**flag=phq9_item9_positive**")
        rows = page.locator("table.registry tbody tr")
        assert rows.count() >= 1
        for index in range(rows.count()):
            assert "At risk" in rows.nth(index).inner_text()

        rows.first.locator("a").first.click()
        page.wait_for_url("**/patients/*")
        flag = page.locator(".urgent-flag", has_text="PHQ-9 item 9 (self-harm) positive").first
        assert flag.is_visible()
        assert "PHQ-9 item 9" in page.locator(".reasons").inner_text()
        if save:
            page.set_viewport_size({"width": 1280, "height": 1700})
            page.screenshot(path=str(SCREENSHOTS / "patient.png"), full_page=False)

        before = page.locator("#main h2[id^=plan-]").first.inner_text()  # the plan status, not "How to reach"
        assert "At risk" in before
        flag.get_by_label("What was done (required)").fill(
            "Called the patient; safety plan reviewed, no plan or intent"
        )
        flag.get_by_role("button").click()
        page.wait_for_url("**acknowledgement=*")
        notice = page.get_by_role("status").first.inner_text()
        assert notice.startswith("Acknowledged: PHQ-9 item 9 (self-harm) positive, by dr-demo.")
        assert "Closed by dr-demo on " in page.locator(".reasons").inner_text()

        # Issue #16, finding 9: the confirmation shows only what was stored; text in the URL is never shown.
        patient_path = page.url.split("?")[0]
        for query in (
            "acknowledged=Patient+denies+all+risk%3B+no+follow-up+needed&was=on_track",
            "acknowledgement=Patient+denies+all+risk",
            "acknowledgement=00000000-0000-4000-8000-000000000000",
        ):
            page.goto(f"{patient_path}?{query}")
            shown = page.locator("#main").inner_text()
            assert "denies all risk" not in shown and "no follow-up" not in shown
            assert not page.locator(".callout-ok[role=status]").count(), query
        context.close()


def test_a_clinician_breaks_the_glass_in_a_real_browser(
    chromium: Any, web_app: FastAPI, web_settings: Settings, new_tenant: Callable[[], str]
) -> None:
    tenant = new_tenant()
    ehr = TestClient(web_app)
    ehr_headers = {"Authorization": f"Bearer {mint_dev_token(web_settings, tenant=tenant, role='ehr-system')}"}
    created = ehr.post(f"{API}/patients", json=patient_body(restricted=True), headers=ehr_headers)
    assert created.status_code == 201, created.text
    patient_id = created.json()["id"]
    token = mint_dev_token(web_settings, tenant=tenant, role="clinician", subject="dr-er")
    with serve(web_app) as base_url:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
        page = context.new_page()
        page.goto("/sign-in")
        page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/")
        response = page.goto(f"/patients/{patient_id}")
        assert response is not None and response.status == 403
        assert page.get_by_role("heading", name="Restricted patient").is_visible()
        page.get_by_label("Why do you need this record now? (required)").fill(
            "Admitted unconscious to the emergency department; need the treatment history"
        )
        page.get_by_label("For how long").select_option("30")
        page.get_by_role("button", name="Break the glass").click()
        page.wait_for_url(f"**/patients/{patient_id}")
        assert "you broke the glass" in page.locator("#break-glass-notice").inner_text()
        assert page.get_by_role("heading", level=1, name=created.json()["family_name"], exact=False).is_visible()
        context.close()
