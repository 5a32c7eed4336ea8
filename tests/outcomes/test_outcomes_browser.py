"""The outcomes page in headless Chromium on the synthetic programme: axe-core finds no serious or critical
violation at 1440 px and 390 px with the curves drawn, the chart fits a phone's width, and the README's
screenshots are taken (docs/screenshots/outcomes*.png)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.auth.tokens import mint_dev_token
from service.settings import Settings
from tests.conftest import project_root
from tests.live_server import serve
from tests.outcomes.programme import Loaded
from tests.web.axe import blocking_violations, describe
from tests.web.chromium import chromium_browser

pytestmark = pytest.mark.browser
SCREENSHOTS = project_root() / "docs" / "screenshots"
WIDTHS = {"desktop": 1440, "phone": 390}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def test_the_outcomes_page_in_a_browser(
    chromium: Any, client: TestClient, settings: Settings, database_url: str, planted_effect: Loaded
) -> None:
    token = mint_dev_token(settings, tenant=planted_effect.tenant_id, role="clinician", subject="demo-clinician")
    found: list[str] = []
    with serve(client.app) as base_url:  # type: ignore[arg-type]
        for name, width in WIDTHS.items():
            context = chromium.new_context(viewport={"width": width, "height": 900}, base_url=base_url, bypass_csp=True)
            page = context.new_page()
            page.goto("/sign-in")
            page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            response = page.goto("/outcomes?period_start=2020-01-01")
            assert response is not None and response.status == 200
            chart = page.locator("svg.km-chart")
            assert chart.count() == 1
            box = chart.bounding_box()
            assert box is not None and box["width"] <= width  # scaled to the column, never wider than the screen
            assert page.get_by_role("table", name="Relapse after response, by CBT adherence").count() == 1
            violations = blocking_violations(page)
            if violations:
                found.append(f"outcomes at {name} ({width} px):\n{describe(violations)}")
            if database_url.startswith("sqlite"):
                suffix = "" if name == "desktop" else "-phone"
                page.locator("#h-response").scroll_into_view_if_needed()
                page.screenshot(path=str(SCREENSHOTS / f"outcomes{suffix}.png"), full_page=name == "desktop")
            context.close()
    assert not found, "\n\n".join(found)
