"""Finding a patient from the caseload's search box in a real browser (headless Chromium, Playwright): a name
typed without its accents, an MRN and a date of birth; two patients of one name told apart by MRN and date of
birth in their rows (issue #21, item 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.auth.tokens import mint_dev_token
from service.settings import Settings
from tests.builders import ApiDriver, enrollment_body
from tests.live_server import serve
from tests.web.chromium import chromium_browser

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def _enrolled(api: ApiDriver, family: str, given: str, born: str, mrn: str) -> None:
    patient_id = api.patient(
        family_name=family, given_name=given, birth_date=born, identifiers=[{"system": "urn:test:mrn", "value": mrn}]
    )
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    api.create("enrollments", enrollment_body(patient_id, start_date=start))


def test_a_coordinator_finds_a_patient_from_the_search_box(
    chromium: Any, web_app: FastAPI, web_settings: Settings, new_tenant: Callable[[], str]
) -> None:
    tenant = new_tenant()
    ehr_token = mint_dev_token(web_settings, tenant=tenant, role="ehr-system")
    api = ApiDriver(TestClient(web_app), {"Authorization": f"Bearer {ehr_token}"})
    _enrolled(api, "Pétrov", "Dana", "1984-03-09", "MRN-4471")
    _enrolled(api, "Pétrov", "Dana", "1991-11-30", "MRN-9902")
    _enrolled(api, "Núñez", "José", "1968-02-29", "MRN-5150")
    _enrolled(api, "Okafor", "Chidi", "1984-03-09", "MRN-1234")
    token = mint_dev_token(web_settings, tenant=tenant, role="coordinator", subject="coordinator-demo")
    with serve(web_app) as base_url:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
        page = context.new_page()
        page.goto("/sign-in")
        page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/")
        rows = page.locator("table.registry tbody tr")

        def search(text: str) -> list[str]:
            box = page.get_by_label("Find a patient")
            box.fill(text)
            box.press("Enter")  # the box submits the filter form, as a coordinator would
            page.wait_for_url("**q=**")
            assert box.input_value() == text  # the box keeps what was typed
            return [rows.nth(i).inner_text() for i in range(rows.count())]

        # Typed without the accent; the two Dana Pétrovs, each row with its MRN and date of birth.
        petrovs = search("Petrov")
        assert len(petrovs) == 2 and all("Pétrov, Dana" in row for row in petrovs)
        assert sorted(next(w for w in ("MRN-4471", "MRN-9902") if w in row) for row in petrovs) == [
            "MRN-4471",
            "MRN-9902",
        ]
        assert any("born 9 Mar 1984" in row for row in petrovs)
        assert any("born 30 Nov 1991" in row for row in petrovs)
        [jose] = search("jose")
        assert "Núñez, José" in jose
        [second] = search("mrn-9902")
        assert "Pétrov, Dana" in second and "born 30 Nov 1991" in second
        born = search("1984-03-09")
        assert sorted("Okafor" in row for row in born) == [False, True]  # a Pétrov and Okafor
        assert [row.strip() for row in search("nobody by that name")] == ["No patients match these filters."]
        context.close()
