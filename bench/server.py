"""The API under uvicorn for the benchmarks, plus a bare endpoint (the floor of the single-create benchmark).

    python -m bench.server --database-url URL --port 8123

The bare endpoint validates the same body as POST /api/v1/ketamine-administrations (the same pydantic model,
behind the same middleware) and answers 201 without touching a database.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse

from bench.common import BENCH_OVERRIDES
from service.app import create_app
from service.records.ketamine import KetamineAdministrationCreate
from tests.conftest import make_settings


def build_app(database_url: str) -> Any:
    app = create_app(make_settings(database_url, **BENCH_OVERRIDES))

    @app.post("/bench/bare/ketamine-administrations", status_code=201, include_in_schema=False)
    def bare(body: KetamineAdministrationCreate) -> JSONResponse:
        return JSONResponse(body.model_dump(mode="json"), status_code=201)

    @app.get("/bench/ping", include_in_schema=False)
    def ping(request: Request) -> dict[str, str]:
        return {"ok": "yes"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build_app(args.database_url)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, workers=1)


if __name__ == "__main__":
    main()
