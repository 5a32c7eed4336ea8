"""The REMS form in a real browser (headless Chromium): a clinician opens it from the patient page, it prints without
the site's chrome, records the submission, and its screenshot is saved (docs/screenshots/rems-form.png)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.auth.tokens import mint_dev_token
from service.demo import generate_demo_tenant
from service.demo_loader import load_demo_tenant
from service.records.ketamine import KetamineAdministration
from service.settings import Settings
from tests.builders import ApiDriver
from tests.conftest import project_root
from tests.live_server import serve
from tests.rems.support import NOW, esketamine_session, headers
from tests.web.chromium import chromium_browser

SCREENSHOTS = project_root() / "docs" / "screenshots"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def test_a_clinician_prints_the_form_and_records_its_submission(
    chromium: Any, client: TestClient, settings: Settings, new_tenant: Callable[[], str], database_url: str
) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    tenant = new_tenant()
    load_demo_tenant(app.state.engine, tenant_id=tenant, demo=generate_demo_tenant(seed=7, patients=3, now=NOW),
                     settings=settings)  # fmt: skip
    with Session(app.state.engine) as session:
        demo_session = session.exec(
            select(KetamineAdministration).where(
                col(KetamineAdministration.tenant_id) == tenant, col(KetamineAdministration.drug) == "esketamine"
            )
        ).first()
    assert demo_session is not None
    # yesterday's session of the demo's esketamine patient: its form is still to submit
    ehr = ApiDriver(client, headers(settings, tenant, "ehr-system"))
    latest = esketamine_session(ehr, demo_session.patient_id, days_ago=1)
    token = mint_dev_token(settings, tenant=tenant, role="clinician", subject="dr-demo")
    with serve(app) as base_url:
        context = chromium.new_context(viewport={"width": 1280, "height": 1600}, base_url=base_url)
        page = context.new_page()
        page.goto("/sign-in")
        page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/")
        anchor = f"rec-{latest['id']}"
        page.goto(f"/patients/{latest['patient_id']}#{anchor}")
        page.locator(f"#{anchor}").get_by_role("link", name="prefilled REMS form").click()
        page.wait_for_url("**/rems-form")
        assert page.get_by_role("heading", name="SPRAVATO REMS Patient Monitoring Form").is_visible()
        assert page.locator("#field-lot_number").inner_text().endswith("LOT-E42")
        assert page.locator(".rems-missing").count() > 0
        if database_url.startswith("sqlite"):  # one screenshot is enough
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "rems-form.png"), full_page=False)
        page.emulate_media(media="print")
        assert not page.locator(".site-header").is_visible() and not page.get_by_text("Download PDF").is_visible()
        assert page.locator("#field-bp_before").is_visible()
        page.emulate_media(media="screen")
        page.get_by_role("button", name="Record the submission").click()
        page.wait_for_url("**/rems-form?recorded=1")
        assert page.get_by_text("Recorded: the form's submission is stored on the session.").is_visible()
        assert "recorded by dr-demo" in page.locator("#submitted").inner_text()
        context.close()
