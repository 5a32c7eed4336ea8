"""The API documentation pages: Swagger UI at /docs (the JSON API) and /docs/fhir (the FHIR facade's document).

Swagger UI's assets come from the installed fastapi-offline package, never from a CDN, so the pages work on a
network without internet access. FastAPI's own page starts Swagger UI with an inline script; these pages start it
from a served file (docs_assets/swagger-init.js), so they keep the coordinator pages' Content-Security-Policy
with no exception for inline script.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse

from service.api.page_headers import SECURITY_HEADERS

SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"
OWN_ASSETS = Path(__file__).parent / "docs_assets"
# Each file by name (a route each, not a directory mount): what the pages load, and nothing else.
ASSETS: Mapping[str, Path] = {
    "swagger-ui-bundle.js": SWAGGER_ASSETS / "swagger-ui-bundle.js",
    "swagger-ui.css": SWAGGER_ASSETS / "swagger-ui.css",
    "favicon.png": SWAGGER_ASSETS / "favicon.png",
    "swagger-init.js": OWN_ASSETS / "swagger-init.js",
    "docs.css": OWN_ASSETS / "docs.css",
}
ASSETS_PATH = "/docs/assets"


def api_documents(fhir_openapi_url: str) -> dict[str, tuple[str, str]]:
    """Page path -> (what it documents, the OpenAPI document it shows)."""
    return {
        "/docs": ("JSON API (/api/v1)", "/openapi.json"),
        "/docs/fhir": ("FHIR R4 facade (/fhir)", fhir_openapi_url),
    }


def install_docs(app: FastAPI, *, fhir_openapi_url: str) -> None:
    documents = api_documents(fhir_openapi_url)
    for name, file in ASSETS.items():

        def asset(file: Path = file) -> FileResponse:
            # Public files that change only with a release: a browser need not fetch 1.5 MB on every visit.
            return FileResponse(file, headers={"Cache-Control": "public, max-age=3600"})

        app.add_api_route(f"{ASSETS_PATH}/{name}", asset, methods=["GET"], include_in_schema=False)
    for path in documents:

        def page(request: Request, path: str = path) -> HTMLResponse:
            return HTMLResponse(
                docs_html(request.scope.get("root_path", ""), path, documents), headers=dict(SECURITY_HEADERS)
            )

        app.add_api_route(path, page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)


def docs_html(root: str, current: str, documents: Mapping[str, tuple[str, str]]) -> str:
    title, openapi_url = documents[current]
    here = ' aria-current="page"'
    links = "\n".join(
        f'<a href="{escape(root + path)}"{here if path == current else ""}>{escape(name)}</a>'
        for path, (name, _) in documents.items()
    )
    raw = f'<a href="{escape(root + openapi_url)}">This document as JSON</a>'
    assets = escape(root + ASSETS_PATH)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Tandem: {escape(title)}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="stylesheet" href="{assets}/docs.css">
<link rel="icon" href="{assets}/favicon.png">
</head>
<body>
<nav class="api-documents" aria-label="API documents">
{links}
{raw}
</nav>
<div id="swagger-ui" data-openapi-url="{escape(root + openapi_url)}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""
