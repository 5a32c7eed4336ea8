"""The OpenAPI document, with error responses under their real media type.

FastAPI files a response `model` under application/json; our errors are application/problem+json, so the
schema is moved there once the document is generated.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.api.problems import PROBLEM_JSON


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for item in document.get("paths", {}).values():
                for operation in item.values():
                    for response in operation.get("responses", {}).values():
                        _move_problem_schema(response.get("content", {}))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _move_problem_schema(content: dict[str, Any]) -> None:
    if PROBLEM_JSON in content and "application/json" in content:
        content[PROBLEM_JSON] = content.pop("application/json")
