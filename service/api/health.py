"""Liveness and readiness probes; they carry no patient data and need no token."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from service.db.migrations import current_revisions, head_revisions

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


@router.get("/healthz", operation_id="checkLiveness", summary="The process is up", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="checkReadiness",
    summary="The database is reachable and its schema is at the migrations' head",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready; `detail` says why"}},
)
def readyz(request: Request) -> Health | JSONResponse:
    settings = request.app.state.settings
    try:
        current = current_revisions(request.app.state.engine)
    except SQLAlchemyError:
        return _unavailable("database unreachable")
    if current != head_revisions(settings.database_url):
        return _unavailable("database schema is not at the migrations' head; run `tandem db upgrade`")
    return Health(status="ok")


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        Health(status="unavailable", detail=detail).model_dump(),
        status_code=503,
        headers={"Retry-After": "5"},
    )
