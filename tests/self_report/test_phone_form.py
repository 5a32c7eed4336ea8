"""Issue #22, part 2-3 in a browser: a phone-sized Chromium (390 px) answers a PHQ-9 through its link, sees the
crisis resources after item 9 "Several days" before sending the rest, sends it; axe-core finds no serious or
critical violation on any screen (question, crisis, review, thank-you, used link). Refreshes
docs/screenshots/self-report-phone.png. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from tests.builders import ApiDriver
from tests.conftest import project_root
from tests.live_server import serve
from tests.web.axe import blocking_violations, describe
from tests.web.chromium import chromium_browser
from tests.web.conftest import enrolled_patient, stored_status

pytestmark = pytest.mark.browser
SCREENSHOT = project_root() / "docs" / "screenshots" / "self-report-phone.png"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def test_a_phone_answers_a_phq9_and_sees_the_crisis_resources_before_sending(
    chromium: Any, web_app: FastAPI, api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    patient_id = enrolled_patient(api_as(tenant))
    sent = api_as(tenant, "coordinator").create(
        f"patients/{patient_id}/invitations", {"instrument": "phq-9", "channel": "none"}
    )
    path = "/r/" + sent["link"].rsplit("/r/", 1)[1]
    found: list[str] = []

    def check(page: Any, screen: str) -> None:
        violations = blocking_violations(page)
        if violations:
            found.append(f"{screen}:\n{describe(violations)}")

    with serve(web_app) as base_url:
        # axe is injected as an inline script, which the pages' Content-Security-Policy rightly forbids.
        context = chromium.new_context(viewport={"width": 390, "height": 844}, base_url=base_url, bypass_csp=True)
        page = context.new_page()
        page.goto(path)
        check(page, "first question")
        for number in range(1, 9):
            assert page.get_by_text(f"Question {number} of 10").is_visible()
            page.get_by_label("Not at all").check()
            page.get_by_role("button", name="Save and continue").click()
        assert page.get_by_text("Thoughts that you would be better off dead").is_visible()
        assert page.get_by_role("heading", name="Help is available now").count() == 0
        page.get_by_label("Several days").check()
        page.get_by_role("button", name="Save and continue").click()
        # Before anything is sent: the crisis resources, then the question still to answer.
        crisis = page.get_by_role("heading", name="Help is available now")
        assert crisis.is_visible()
        assert page.get_by_role("link", name="Call 988").is_visible()
        assert page.get_by_text("Question 10 of 10").is_visible()
        assert stored_status(web_app.state.engine, tenant, patient_id).status == "at_risk"
        check(page, "crisis screen")
        page.screenshot(path=str(SCREENSHOT), full_page=False)
        # No horizontal scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.get_by_label("Somewhat difficult").check()
        page.get_by_role("button", name="Save and continue").click()
        assert page.get_by_role("heading", name="Check your answers").is_visible()
        check(page, "review")
        page.get_by_role("button", name="Send my answers").click()
        assert page.get_by_role("heading", name="Thank you").is_visible()
        assert crisis.is_visible()
        check(page, "thank you")
        again = page.goto(path)
        assert again is not None and again.status == 410
        assert page.get_by_text("already been answered").is_visible()
        check(page, "used link")
        context.close()
    assert not found, "\n\n".join(found)
