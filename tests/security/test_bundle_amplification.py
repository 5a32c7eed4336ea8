"""Batch amplification (issue #16, finding 8): a Bundle's work is bounded before it runs and while its answer is
built, and each entry counts against the rate limit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.settings import Settings
from tests.fhir.support import patient_resource
from tests.security.support import new_tenant_id, role_headers

FHIR_JSON = "application/fhir+json"


def _headers(settings: Settings, tenant_id: str, request_id: str | None = None) -> dict[str, str]:
    headers = {**role_headers(settings, tenant_id, "clinician"), "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    return {**headers, "X-Request-ID": request_id} if request_id else headers


def _batch(urls: list[str], kind: str = "batch") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"request": {"method": "GET", "url": u}} for u in urls]}


def test_150_heavy_searches_are_refused_before_any_runs(client: TestClient, settings: Settings, engine: Engine) -> None:
    tenant_id = new_tenant_id(engine)
    heavy = ["Observation?_count=200&_include=Observation:patient"] * 150
    response = client.post("/fhir", json=_batch(heavy), headers=_headers(settings, tenant_id))
    assert response.status_code == 413, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert "TANDEM_MAX_BUNDLE_RESOURCES allows 2000" in issue["diagnostics"]
    assert "up to 60000 resources" in issue["diagnostics"]
    print(f"\n[bundle amplification] 150 heavy searches: 413 in {len(response.content)} bytes, no entry run")


def test_a_batch_within_the_limits_works(client: TestClient, settings: Settings, engine: Engine) -> None:
    tenant_id = new_tenant_id(engine)
    response = client.post("/fhir", json=_batch(["Patient?_count=50"] * 10), headers=_headers(settings, tenant_id))
    assert response.status_code == 200, response.text
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["200"] * 10


def test_a_transaction_over_the_response_budget_writes_nothing(
    settings_factory: Callable[..., TestClient], settings: Settings, engine: Engine
) -> None:
    small = settings_factory(max_bundle_response_bytes=4096)
    tenant_id = new_tenant_id(engine)
    marker = f"Amplify{uuid.uuid4().hex[:8]}"
    entries = [
        {"request": {"method": "POST", "url": "Patient"}, "resource": patient_resource(name=[{"family": marker}])}
        for _ in range(12)
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = small.post("/fhir", json=bundle, headers=_headers(settings, tenant_id))
    assert response.status_code == 413, response.text
    assert "TANDEM_MAX_BUNDLE_RESPONSE_BYTES allows 4096" in response.json()["issue"][0]["diagnostics"]
    found = small.get("/fhir/Patient", params={"_count": 50}, headers=_headers(settings, tenant_id)).json()
    assert not found.get("entry"), "the refused transaction wrote patients"
    print("\n[bundle amplification] 12-patient transaction over a 4096-byte budget: 413, 0 patients written")


def test_the_rate_limit_counts_each_bundle_entry(
    settings_factory: Callable[..., TestClient], settings: Settings, engine: Engine
) -> None:
    limited = settings_factory(rate_limit_per_minute=10)
    tenant_id = new_tenant_id(engine)
    headers = _headers(settings, tenant_id)
    first = limited.post("/fhir", json=_batch(["Patient?_count=1"] * 8), headers=headers)
    assert first.status_code == 200, first.text
    second = limited.post("/fhir", json=_batch(["Patient?_count=1"] * 5), headers=headers)
    assert second.status_code == 429, second.text
    assert int(second.headers["retry-after"]) >= 1
    assert "counts as 5 requests" in second.json()["issue"][0]["diagnostics"]
    too_big = limited.post("/fhir", json=_batch(["Patient?_count=1"] * 11), headers=headers)
    assert too_big.status_code == 429 and "split it" in too_big.text
