"""Killed PostgreSQL connections under FHIR creates, transaction Bundles and /api creates (issue #17, item 8).

Bursts of pg_terminate_backend while writers send: /api/v1 patient creates, FHIR QuestionnaireResponse creates
(a PHQ-9 with its own identifier) and transaction Bundles (a Patient and its PHQ-9). Afterwards every write is
looked up by its identifier through the FHIR surface.

Required: every answer is 2xx or 503 with Retry-After, never a 500; no write answered 503 "nothing was stored"
is found stored (the unit of work commits last, so a failure before COMMIT rolled everything back); a 503 for a
COMMIT that lost its connection says the outcome is unknown, and may be either; every 2xx is stored; no
"Exception in ASGI application" traceback is logged (the rollback and close after a failure are quiet).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from service.auth.tokens import mint_dev_token
from service.records.questionnaire import QuestionnaireResponse
from tests.builders import API, patient_body
from tests.conftest import make_settings
from tests.fhir.test_facade_conformance import _phq9_response
from tests.live_server import serve
from tests.reliability.pg_faults import DatabaseSwitch, observed_app, register, throwaway_postgres

WRITERS = 3
LOAD_SECONDS = 12
SYSTEM = "urn:test:faults"


@dataclass
class Sent:
    kind: str
    identifier: str
    status: int
    detail: str
    retry_after: str | None


def _questionnaire_response(subject: str, identifier: str) -> dict[str, Any]:
    response = _phq9_response(subject)
    response["identifier"] = {"system": SYSTEM, "value": identifier}
    response["authored"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return response


def _transaction(identifier: str) -> dict[str, Any]:
    urn = f"urn:uuid:{uuid.uuid4()}"
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": identifier}],
        "name": [{"family": "Faulted", "given": ["Bundle"]}],
        "gender": "female",
        "birthDate": "1980-01-01",
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn, "resource": patient, "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": _questionnaire_response(urn, f"{identifier}-qr"),
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ],
    }


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    return str(body.get("detail") or body.get("issue") or "")


def test_no_write_answered_nothing_stored_is_stored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with throwaway_postgres() as url:
        settings = make_settings(url, database_pool_size=4)
        app = observed_app(settings)
        tenant = register(app.state.engine, "t-writefaults")
        token = mint_dev_token(settings, tenant=tenant, role="ehr-system")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        switch = DatabaseSwitch(url)
        sent: list[Sent] = []
        lock = threading.Lock()
        stop = threading.Event()

        with serve(app) as base_url:
            with httpx.Client(base_url=base_url, timeout=30) as http:
                subject = http.post(f"{API}/patients", json=patient_body(), headers=headers).json()["id"]

            def writer(n: int) -> None:
                kinds = ["api", "fhir-qr", "bundle"]
                with httpx.Client(base_url=base_url, timeout=30) as http:
                    i = 0
                    while not stop.is_set():
                        kind = kinds[(n + i) % 3]
                        i += 1
                        identifier = uuid.uuid4().hex
                        if kind == "api":
                            body = patient_body(source={"system": SYSTEM, "value": identifier})
                            response = http.post(f"{API}/patients", json=body, headers=headers)
                        elif kind == "fhir-qr":
                            body = _questionnaire_response(f"Patient/{subject}", identifier)
                            conditional = {**headers, "If-None-Exist": f"identifier={SYSTEM}|{identifier}"}
                            response = http.post("/fhir/QuestionnaireResponse", json=body, headers=conditional)
                        else:
                            response = http.post("/fhir", json=_transaction(identifier), headers=headers)
                        with lock:
                            sent.append(
                                Sent(
                                    kind,
                                    identifier,
                                    response.status_code,
                                    _detail(response),
                                    response.headers.get("retry-after"),
                                )
                            )

            killed = 0
            with ThreadPoolExecutor(WRITERS) as pool:
                futures = [pool.submit(writer, n) for n in range(WRITERS)]
                started = time.monotonic()
                while time.monotonic() - started < LOAD_SECONDS:
                    time.sleep(0.6)
                    killed += switch.terminate_backends()
                time.sleep(1.0)
                stop.set()
                for future in futures:
                    future.result(timeout=60)

            def stored(http: httpx.Client, s: Sent) -> bool:
                if s.kind == "api":
                    found = http.get(
                        f"{API}/patients", params={"identifier": f"{SYSTEM}|{s.identifier}"}, headers=headers
                    )
                    assert found.status_code == 200, found.text
                    return bool(found.json()["items"])
                if s.kind == "fhir-qr":  # sent with If-None-Exist on its identifier: that is its source
                    with Session(app.state.engine) as session:
                        return (
                            session.exec(
                                select(QuestionnaireResponse.id).where(
                                    col(QuestionnaireResponse.tenant_id) == tenant,
                                    col(QuestionnaireResponse.source_system) == SYSTEM,
                                    col(QuestionnaireResponse.source_id) == s.identifier,
                                )
                            ).first()
                            is not None
                        )
                found = http.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|{s.identifier}"}, headers=headers)
                assert found.status_code == 200, found.text
                return bool(found.json().get("entry"))

            with httpx.Client(base_url=base_url, timeout=30) as http:
                found = {id(s): stored(http, s) for s in sent}
        switch.close()
        app.state.engine.dispose()

    statuses = Counter((s.kind, s.status) for s in sent)
    said_nothing = [s for s in sent if s.status == 503 and "nothing was stored" in s.detail]
    unknown = [s for s in sent if s.status == 503 and "outcome is unknown" in s.detail]
    stored_though_refused = [s for s in said_nothing if found[id(s)]]
    acknowledged_missing = [s for s in sent if s.status in (200, 201) and not found[id(s)]]
    tracebacks = [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
    print(
        f"\nwrite faults: {len(sent)} writes, {killed} backends killed; {dict(statuses)}; 503 nothing-stored "
        f"{len(said_nothing)} (found stored: {len(stored_though_refused)}), 503 outcome-unknown "
        f"{len(unknown)} (stored: {sum(found[id(s)] for s in unknown)}); ASGI tracebacks {len(tracebacks)}"
    )
    assert {status for _, status in statuses} <= {200, 201, 503}, statuses
    assert all(s.retry_after for s in sent if s.status == 503), "a 503 without Retry-After"
    assert any(s.status == 503 for s in sent), "no write met a killed connection: the fault was not injected"
    assert all(s in said_nothing or s in unknown for s in sent if s.status == 503), "a 503 that says neither"
    assert not stored_though_refused, [(s.kind, s.identifier) for s in stored_though_refused]
    assert not acknowledged_missing, [(s.kind, s.identifier) for s in acknowledged_missing]
    assert not tracebacks, tracebacks[0].getMessage()
