"""The outcomes page: charts with their numbers beside them, "< 11" for small cells, the caveats in words, the
same filters refused in words, and only clinicians and admins. Both databases."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.auth.principal import Role
from service.settings import Settings
from tests.outcomes.programme import Loaded
from tests.web.conftest import Browser


@pytest.fixture
def signed_in(client: TestClient, settings: Settings):
    def open_as(tenant_id: str, role: Role) -> Browser:
        browser = Browser(TestClient(client.app, raise_server_exceptions=True), settings)
        browser.sign_in(tenant_id, role)
        return browser

    return open_as


def test_the_page_draws_the_curves_with_their_tables_and_caveats(signed_in, planted_effect: Loaded) -> None:
    browser = signed_in(planted_effect.tenant_id, "clinician")
    page = browser.get("/outcomes", params={"period_start": "2020-01-01"})
    assert page.status_code == 200, page.text
    html = page.text
    assert "observational data" in html and "not a trial" in html
    assert html.count('class="outcome-chart km-chart"') == 1 and 'class="km-band km-band-1"' in html
    assert "<caption>Relapse after response, by CBT adherence</caption>" in html
    assert "&lt; 11" in html  # the three patients without a week-8 score
    assert "https://" not in re.sub(r'xmlns="[^"]+"', "", html.split("<main", 1)[1])  # nothing fetched from elsewhere
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_coordinators_do_not_see_outcomes_and_bad_filters_are_refused_in_words(signed_in, tenant: str) -> None:
    coordinator = signed_in(tenant, "coordinator")
    assert coordinator.get("/outcomes").status_code == 403
    admin = signed_in(tenant, "admin")
    assert admin.get("/outcomes").status_code == 200
    refused = admin.get("/outcomes", params={"period_start": "2026-05-01", "period_end": "2026-04-01"})
    assert refused.status_code == 422 and "after it ends" in refused.text
    assert admin.get("/outcomes", params={"period_start": "soon"}).status_code == 422
