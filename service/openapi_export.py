"""The OpenAPI document as committed in openapi/openapi.json, independent of the local environment."""

from __future__ import annotations

from typing import Any

from service.app import create_app
from service.settings import Settings


def openapi_document() -> dict[str, Any]:
    # An in-memory database and docs on: the spec must not depend on where it is exported.
    settings = Settings(database_url="sqlite://", docs_enabled=True, environment="development")
    return create_app(settings).openapi()
