"""The OpenAPI documents as committed in openapi/, independent of the local environment: the JSON API's
(openapi.json) and the FHIR facade's, generated from its CapabilityStatement (fhir-openapi.json)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.app import create_app
from service.fhir.capability import capability_statement
from service.fhir.openapi import SERVER_URL, fhir_openapi
from service.settings import Settings


def _app() -> FastAPI:
    # An in-memory database and docs on: the spec must not depend on where it is exported.
    settings = Settings(database_url="sqlite://", docs_enabled=True, environment="development")
    return create_app(settings)


def openapi_document() -> dict[str, Any]:
    return _app().openapi()


def fhir_openapi_document() -> dict[str, Any]:
    """The document /fhir/openapi.json serves (the same wherever the service runs: its server URL is relative)."""
    app = _app()
    return fhir_openapi(capability_statement(SERVER_URL, app.state.settings.canonical_base, app.version))
