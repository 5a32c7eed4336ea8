"""Liveness and readiness."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


def test_readyz_reports_an_unmigrated_database(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'empty.db'}"))
    with TestClient(app) as fresh:
        response = fresh.get("/readyz")
    assert response.status_code == 503
    assert "migrations" in response.json()["detail"]
    assert response.headers["retry-after"]


def test_readyz_reports_an_unreachable_database() -> None:
    app = create_app(make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    with TestClient(app) as unreachable:
        response = unreachable.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "database unreachable"
