"""The EHR's keys over time and a JWT sent twice at once: a rotated key is fetched again, an unreachable JWK Set is
a 401 saying so, and of two concurrent calls with one JWT exactly one is answered (a real server, both databases).

The clock of the JWK Set cache is the only thing replaced (tests may mock clocks); the EHR is tests/cds_hooks/ehr.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.cds_hooks import jwks as jwks_cache
from tests.cds_hooks.ehr import CdsClient, EhrWeb, SigningKey
from tests.cds_hooks.support import SERVICE, SERVICE_BASE, api, enrolled, prefetch
from tests.cds_hooks.support import registered as register
from tests.live_server import serve


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_key_the_ehr_rotated_in_is_fetched_again(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(jwks_cache, "time", clock)
    issuer = register(cds_cli, tenant, ehr)
    enrolled(api(cds_app, tenant), "MRN-ROT", days_ago=3)
    old = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0])
    assert old.call(SERVICE, "eRot", prefetch=prefetch("eRot", "MRN-ROT")).status_code == 200
    new_key = SigningKey.ec()
    ehr.keys.append(new_key)
    rotated = CdsClient(cds_app, SERVICE_BASE, issuer, new_key)
    clock.now += jwks_cache.REFETCH_AFTER_SECONDS / 2  # just fetched: an unknown kid does not fetch again yet
    early = rotated.call(SERVICE, "eRot", prefetch=prefetch("eRot", "MRN-ROT"))
    assert early.status_code == 401 and new_key.kid in early.json()["detail"]
    clock.now += jwks_cache.REFETCH_AFTER_SECONDS
    assert rotated.call(SERVICE, "eRot", prefetch=prefetch("eRot", "MRN-ROT")).status_code == 200
    assert ehr.requests.count("/jwks.json") == 2


def test_an_unreachable_jwk_set_is_a_401_that_says_so(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    down = EhrWeb(f"http://127.0.0.1:{closed_port}", ehr.keys)
    issuer = register(cds_cli, tenant, down)
    response = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0]).call(SERVICE, "eDown")
    assert response.status_code == 401
    assert "could not be fetched" in response.json()["detail"]


def test_one_jwt_sent_twice_at_once_is_answered_once(
    cds_app: TestClient, ehr: EhrWeb, cds_cli: Callable[..., Any], tenant: str
) -> None:
    issuer = register(cds_cli, tenant, ehr)
    enrolled(api(cds_app, tenant), "MRN-RACE", days_ago=3)
    client = CdsClient(cds_app, SERVICE_BASE, issuer, ehr.keys[0])
    token = client.token(client.service_url(SERVICE))
    body = {"hook": "patient-view", "hookInstance": "5f0c", "context": {"patientId": "eRace"},
            "prefetch": prefetch("eRace", "MRN-RACE")}  # fmt: skip
    statuses: list[int] = []
    start = threading.Barrier(2)
    with serve(cds_app.app) as base_url:  # type: ignore[arg-type]

        def send() -> None:
            start.wait()
            answer = httpx.post(f"{base_url}/cds-services/{SERVICE}", json=body,
                                headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(statuses) == [200, 401]
