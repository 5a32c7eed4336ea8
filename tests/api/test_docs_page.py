"""/docs and /docs/fhir: Swagger UI from the installed package (no CDN), under the coordinator pages' security
headers, with no inline script (issue #24 part 1; the browser test is tests/web/test_docs_browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import fastapi_offline
import pytest
from fastapi.testclient import TestClient

from service.api.page_headers import SECURITY_HEADERS as PAGE_SECURITY_HEADERS
from service.app import create_app
from tests.conftest import make_settings

SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.DOTALL)
ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.fixture(scope="module")
def docs_client() -> TestClient:
    return TestClient(create_app(make_settings("sqlite://")))  # the documentation reads no database


def test_the_docs_pages_keep_the_pages_security_headers(docs_client: TestClient) -> None:
    for path in ("/docs", "/docs/fhir"):
        page = docs_client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for name, value in PAGE_SECURITY_HEADERS.items():
            assert page.headers[name] == value, (path, name)
        assert "'unsafe-inline'" not in page.headers["content-security-policy"]


def test_the_docs_pages_have_no_inline_script_and_nothing_off_site(docs_client: TestClient) -> None:
    for path in ("/docs", "/docs/fhir"):
        html = docs_client.get(path).text
        scripts = SCRIPT.findall(html)
        assert len(scripts) == 2, path  # Swagger UI and the file that starts it
        for attributes, body in scripts:
            assert "src=" in attributes and not body.strip(), (path, attributes)
        assert "http://" not in html and "https://" not in html, path
        for asset in ASSET.findall(html):
            answer = docs_client.get(asset)
            assert answer.status_code == 200, (path, asset)


def test_swagger_ui_is_the_installed_packages(docs_client: TestClient) -> None:
    shipped = Path(fastapi_offline.__file__).parent / "static"
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        served = docs_client.get(f"/docs/assets/{name}")
        assert served.status_code == 200
        assert served.content == (shipped / name).read_bytes()
    bundle = docs_client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    assert bundle.headers["cache-control"] == "public, max-age=3600"  # not the no-store of patient data
    assert docs_client.get("/docs/assets/not-an-asset.js").status_code == 404


def test_each_page_shows_its_document_and_links_the_other(docs_client: TestClient) -> None:
    api = docs_client.get("/docs").text
    fhir = docs_client.get("/docs/fhir").text
    assert 'data-openapi-url="/openapi.json"' in api
    assert 'data-openapi-url="/fhir/openapi.json"' in fhir
    assert 'href="/docs/fhir"' in api
    assert 'href="/docs"' in fhir


def test_a_root_path_prefixes_every_address() -> None:
    client = TestClient(create_app(make_settings("sqlite://")), root_path="/tandem")
    html = client.get("/docs").text
    assert 'data-openapi-url="/tandem/openapi.json"' in html
    assert 'src="/tandem/docs/assets/swagger-ui-bundle.js"' in html
