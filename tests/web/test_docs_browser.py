"""/docs and /docs/fhir in a real browser with no network beyond the service (issue #24 part 1): every request
that is not to the test server is aborted, and Swagger UI must still render each document, open an operation,
and report no Content-Security-Policy violation. A control page (FastAPI's own Swagger page, whose inline script
the policy forbids) shows the violation detector works."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from service.api.page_headers import SECURITY_HEADERS
from service.app import create_app
from tests.conftest import make_settings
from tests.live_server import serve
from tests.web.chromium import chromium_browser

pytestmark = pytest.mark.browser

# Registered before any page script runs (Playwright injects it outside the page's CSP).
VIOLATION_REPORTER = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def docs_app() -> FastAPI:
    app = create_app(make_settings("sqlite://"))  # the documentation reads no database

    @app.get("/control/inline-swagger", include_in_schema=False)
    def inline_swagger() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="control",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
        )
        page.headers.update(SECURITY_HEADERS)
        return page

    return app


class Offline:
    """A browser context that reaches only the test server, and what its pages said about their policy."""

    def __init__(self, chromium: Any, base_url: str) -> None:
        self.base_url = base_url
        self.left: list[str] = []  # requests for anything but the test server (aborted)
        self.console: list[str] = []
        self.context = chromium.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._only_the_server)
        self.context.add_init_script(VIOLATION_REPORTER)
        self.page = self.context.new_page()
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))

    def _only_the_server(self, route: Any) -> None:
        if route.request.url.startswith(self.base_url + "/"):
            route.continue_()
        else:
            self.left.append(route.request.url)
            route.abort()

    def violations(self) -> list[str]:
        reported: list[str] = self.page.evaluate("window.__violations")
        return reported + [m for m in self.console if "Refused to" in m or "Content Security Policy" in m]


def test_swagger_ui_renders_both_documents_offline_with_no_csp_violation(chromium: Any, docs_app: FastAPI) -> None:
    fhir_document = TestClient(docs_app).get("/fhir/openapi.json").json()
    fhir_operations = sum(len(item) for item in fhir_document["paths"].values())
    with serve(docs_app) as base_url:
        browser = Offline(chromium, base_url)
        for path, title in (("/docs", "Tandem"), ("/docs/fhir", "Tandem FHIR R4 facade")):
            browser.page.goto(path)
            browser.page.locator(".opblock").first.wait_for()
            assert browser.page.locator(".info .title").inner_text().startswith(title)
            # Swagger UI works, not just paints: an operation opens and shows its parameters.
            browser.page.locator(".opblock-summary").first.click()
            browser.page.locator(".opblock-body").first.wait_for()
            assert browser.violations() == [], path
        # Every operation of the FHIR document is on the page (the tags are listed open).
        assert browser.page.locator(".opblock").count() == fhir_operations
        browser.page.get_by_role("link", name="JSON API (/api/v1)").click()
        browser.page.wait_for_url(f"{base_url}/docs")
        browser.page.locator(".opblock").first.wait_for()
        assert browser.violations() == []
        assert browser.left == [], "the docs asked for something outside the service"
        assert not [m for m in browser.console if m.startswith("page error")], browser.console
        browser.context.close()


def test_the_violation_detector_catches_an_inline_script(chromium: Any, docs_app: FastAPI) -> None:
    with serve(docs_app) as base_url:
        browser = Offline(chromium, base_url)
        browser.page.goto("/control/inline-swagger")
        browser.page.wait_for_function("window.__violations.length > 0")
        assert any(v.startswith("script-src") for v in browser.violations())
        assert browser.page.locator(".opblock").count() == 0  # the inline start was refused: nothing rendered
        browser.context.close()
