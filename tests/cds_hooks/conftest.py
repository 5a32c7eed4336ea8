"""The CDS Hooks tests' app (EHR hosts on loopback allowed, the public URL set), the EHR and `tandem cds`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.cli import app as cli
from service.settings import get_settings
from tests.cds_hooks.ehr import EhrWeb, SigningKey, serve_ehr
from tests.cds_hooks.support import SERVICE_BASE


@pytest.fixture
def cds_app(settings_factory: Callable[..., TestClient]) -> TestClient:
    return settings_factory(sync_allowed_hosts=["127.0.0.1"], sync_require_https=False, public_base_url=SERVICE_BASE)


@pytest.fixture
def ehr() -> Iterator[EhrWeb]:
    with serve_ehr([SigningKey.rsa(), SigningKey.ec()]) as web:
        yield web


@pytest.fixture
def cds_cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    monkeypatch.setenv("TANDEM_SYNC_ALLOWED_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("TANDEM_SYNC_REQUIRE_HTTPS", "false")
    monkeypatch.setenv("TANDEM_PUBLIC_BASE_URL", SERVICE_BASE)
    get_settings.cache_clear()

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["cds", *args])

    yield run
    get_settings.cache_clear()
