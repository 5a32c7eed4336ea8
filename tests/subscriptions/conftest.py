"""Fixtures: a sekmet-fhir subscriber per module, and a Tandem app that may send to it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.settings import Settings
from tests.builders import ApiDriver
from tests.conftest import make_settings
from tests.ehr_peer.sekmet_server import sekmet_fixture
from tests.subscriptions.support import HOOK_TOKEN

# The subscriber listens on loopback: allowed here as an operator allows a host on the hospital network.
LOOPBACK_ALLOWED = {"sync_allowed_hosts": ["127.0.0.1"], "sync_require_https": False, "sync_max_attempts": 3}

sekmet = sekmet_fixture(extra_settings={"subscriptions": {"hook_token": HOOK_TOKEN}})


@dataclass
class Tandem:
    client: TestClient
    settings: Settings
    engine: Engine
    tenant: str
    api: ApiDriver  # the EHR system of `tenant`
    headers: dict[str, str]
    clinician: dict[str, str]


@pytest.fixture
def tandem(
    settings_factory: Callable[..., TestClient],
    database_url: str,
    tenant: str,
    auth: Callable[..., dict[str, str]],
) -> Tandem:
    client = settings_factory(**LOOPBACK_ALLOWED)
    headers = auth(tenant, "ehr-system")
    return Tandem(
        client=client,
        settings=make_settings(database_url, **LOOPBACK_ALLOWED),
        engine=client.app.state.engine,  # type: ignore[attr-defined]
        tenant=tenant,
        api=ApiDriver(client, headers),
        headers={**headers, "Content-Type": "application/fhir+json"},
        clinician=auth(tenant, "clinician"),
    )
