"""The API under uvicorn for the benchmarks, plus bare endpoints (the floors of the single-create benchmark).

    python -m bench.server --database-url URL --port 8123

The bare endpoints answer 201 without touching a database, behind the same middleware as the real routes:
- `POST /bench/bare/ketamine-administrations` validates the same body as POST /api/v1/ketamine-administrations
  (the same pydantic model);
- `POST /bench/bare/fhir/{type}` (Patient, QuestionnaireResponse, ...) reads the body as POST /fhir/{type} does
  (`parse_body`) and validates it with fhir.resources (R4B, the model sekmet-fhir and the parse floor use), in a
  worker thread as the real route runs its write: a validate-only FHIR endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fhir.resources.R4B import get_fhir_model_class
from starlette.concurrency import run_in_threadpool

from bench.common import BENCH_OVERRIDES
from service.api.fhir_formats import parse_body
from service.app import create_app
from service.records.ketamine import KetamineAdministrationCreate
from tests.conftest import make_settings


def build_app(database_url: str) -> Any:
    app = create_app(make_settings(database_url, **BENCH_OVERRIDES))

    @app.post("/bench/bare/ketamine-administrations", status_code=201, include_in_schema=False)
    def bare(body: KetamineAdministrationCreate) -> JSONResponse:
        return JSONResponse(body.model_dump(mode="json"), status_code=201)

    @app.post("/bench/bare/fhir/{resource_type}", include_in_schema=False)
    async def bare_fhir(resource_type: str, request: Request) -> Response:
        resource = parse_body(await request.body(), request.headers.get("content-type"))
        model = get_fhir_model_class(resource_type)
        await run_in_threadpool(model.model_validate, resource)
        return Response(json.dumps(resource), status_code=201, media_type="application/fhir+json")

    @app.get("/bench/ping", include_in_schema=False)
    def ping(request: Request) -> dict[str, str]:
        return {"ok": "yes"}

    return app


def app_from_environment() -> Any:
    """The app of one worker process when uvicorn runs several (it imports a factory, not an object)."""
    return build_app(os.environ[DATABASE_URL_VARIABLE])


DATABASE_URL_VARIABLE = "TANDEM_BENCH_DATABASE_URL"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="API worker processes (more than 1: PostgreSQL)")
    args = parser.parse_args()
    quiet: dict[str, Any] = {"host": "127.0.0.1", "port": args.port, "log_level": "warning", "access_log": False}
    if args.workers == 1:
        uvicorn.run(build_app(args.database_url), workers=1, **quiet)
        return
    os.environ[DATABASE_URL_VARIABLE] = args.database_url
    uvicorn.run("bench.server:app_from_environment", factory=True, workers=args.workers, **quiet)


if __name__ == "__main__":
    main()
