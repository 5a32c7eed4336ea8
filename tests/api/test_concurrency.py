"""Concurrent duplicates of one record yield one record: the unique constraint decides, not a read-then-write."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from service.records.patient import Patient
from tests.builders import API, patient_body
from tests.live_server import serve

CONCURRENT_REQUESTS = 16


def test_sixteen_concurrent_duplicates_make_one_record(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    body = patient_body()
    headers = auth(tenant, "ehr-system")
    barrier = threading.Barrier(CONCURRENT_REQUESTS)

    with serve(client.app) as base_url:  # type: ignore[arg-type]

        def send(_: int) -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=60) as http:
                barrier.wait()  # release all requests together
                return http.post(f"{API}/patients", json=body, headers=headers)

        with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
            responses = list(pool.map(send, range(CONCURRENT_REQUESTS)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (CONCURRENT_REQUESTS - 1) + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    with Session(engine) as session:
        stored = session.exec(
            select(func.count())
            .select_from(Patient)
            .where(col(Patient.tenant_id) == tenant, col(Patient.source_id) == body["source"]["value"])
        ).one()
    assert stored == 1


def test_concurrent_updates_with_the_same_if_match_lose_nothing(
    client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth(tenant, "ehr-system")
    created = client.post(f"{API}/patients", json=patient_body(), headers=headers).json()
    barrier = threading.Barrier(2)

    with serve(client.app) as base_url:  # type: ignore[arg-type]

        def send(name: str) -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=60) as http:
                barrier.wait()
                return http.patch(
                    f"{API}/patients/{created['id']}",
                    json={"given_name": name},
                    headers={**headers, "If-Match": 'W/"1"'},
                )

        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(send, ["Ana", "Bo"]))

    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status_code == 200).json()
    final = client.get(f"{API}/patients/{created['id']}", headers=headers).json()
    assert (final["given_name"], final["version"]) == (winner["given_name"], 2)
