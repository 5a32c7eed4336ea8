"""Concurrency over a real uvicorn, on SQLite and PostgreSQL, covering what tests/api/test_concurrency.py and
tests/fhir/test_facade_guarantees.py do not:

* 16 transaction Bundles touching one patient at once: each is all or nothing, and the final state equals some
  serial order of the Bundles that succeeded (versions 2..n+1, one per Bundle, each version written by exactly
  one Bundle, every QuestionnaireResponse of a successful Bundle stored and none of a failed one).
* 32 concurrent QuestionnaireResponse creates for one enrolled patient (JSON API, distinct records): the stored
  plan status equals a fresh recompute from what is stored (no lost update of the read model).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.caseload.recompute import recompute_patient
from service.caseload.tables import PlanStatusRow
from service.records.questionnaire import QuestionnaireResponse
from tests.builders import API, ApiDriver, enrollment_body, questionnaire_body
from tests.fhir.support import FHIR_JSON, patient_resource
from tests.live_server import serve

BUNDLES = 16
QUESTIONNAIRES = 32
PHQ9 = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
PHQ9_ANSWERS = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]  # 0..3


@pytest.fixture
def base_url(client: TestClient) -> Iterator[str]:
    with serve(client.app) as url:  # type: ignore[arg-type]
        yield url


def _together(count: int, send: Callable[[httpx.Client, int], httpx.Response], base_url: str) -> list[httpx.Response]:
    barrier = threading.Barrier(count, timeout=60)

    def one(n: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            barrier.wait()  # release every request together
            return send(http, n)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def _qr(subject: str, score_step: int) -> dict[str, Any]:
    answer = PHQ9_ANSWERS[score_step % 4]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://loinc.org/q/44249-1",
        "status": "completed",
        "subject": {"reference": subject},
        "authored": f"2026-10-{6 + score_step % 20:02d}T08:30:00Z",
        "item": [
            {"linkId": f"/{c}", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": answer}}]}
            for c in PHQ9
        ],
    }


def test_concurrent_transaction_bundles_are_atomic_and_serializable(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]], base_url: str
) -> None:
    headers = {**auth(tenant, "ehr-system"), "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    created = client.post("/fhir/Patient", json=patient_resource(), headers=headers)
    assert created.status_code == 201, created.text
    patient = created.json()
    pid = patient["id"]
    markers = [f"urn:uuid:{uuid.uuid4()}" for _ in range(BUNDLES)]

    def bundle(n: int, version: str) -> dict[str, Any]:
        updated = {**patient, "name": [{"family": f"Serial{n:02d}", "given": ["Ada"]}]}
        updated.pop("meta", None)
        request: dict[str, Any] = {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": f'W/"{version}"'}
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": updated, "request": request},
                {
                    "fullUrl": markers[n],
                    "resource": _qr(f"Patient/{pid}", n),
                    "request": {"method": "POST", "url": "QuestionnaireResponse"},
                },
            ],
        }

    def send(http: httpx.Client, n: int) -> httpx.Response:
        """Every fourth Bundle edits version 1 once: it only wins if it runs first, and otherwise gets 412 and must
        change nothing. The others are optimistic clients: read the current version, send it, retry on 412."""
        for _ in range(10 * BUNDLES):
            version = (
                "1" if n % 4 == 3 else http.get(f"/fhir/Patient/{pid}", headers=headers).json()["meta"]["versionId"]
            )
            response = http.post("/fhir", json=bundle(n, version), headers=headers)
            if response.status_code != 412 or n % 4 == 3:
                return response
        return response

    responses = _together(BUNDLES, send, base_url)
    statuses = [r.status_code for r in responses]
    assert all(s in (200, 409, 412) for s in statuses), [
        (s, r.text[:300]) for s, r in zip(statuses, responses, strict=True)
    ]
    won = [n for n, s in enumerate(statuses) if s == 200]
    lost = [n for n, s in enumerate(statuses) if s != 200]
    assert all(n % 4 == 3 for n in lost), "only the If-Match bundles may lose"

    # Serial order: the successful Bundles got versions 2..len(won)+1, one each.
    version_of = {}
    for n in won:
        etag = responses[n].json()["entry"][0]["response"]["etag"]
        version_of[n] = int(etag.removeprefix("W/").strip('"'))
    assert sorted(version_of.values()) == list(range(2, len(won) + 2)), version_of
    history = client.get(f"/fhir/Patient/{pid}/_history", headers=headers).json()
    family_at = {int(e["resource"]["meta"]["versionId"]): e["resource"]["name"][0]["family"] for e in history["entry"]}
    for n, version in version_of.items():
        assert family_at[version] == f"Serial{n:02d}", (n, version, family_at)
    final = client.get(f"/fhir/Patient/{pid}", headers=headers).json()
    last = max(version_of, key=version_of.__getitem__)
    assert final["name"][0]["family"] == f"Serial{last:02d}"
    assert int(final["meta"]["versionId"]) == len(won) + 1

    # All or nothing: a winner's QuestionnaireResponse is stored, a loser's is not.
    with Session(engine) as session:
        sources = set(
            session.exec(
                select(QuestionnaireResponse.source_id).where(
                    col(QuestionnaireResponse.tenant_id) == tenant, col(QuestionnaireResponse.patient_id) == pid
                )
            )
        )
    assert sources == {markers[n] for n in won}
    print(
        f"\n{BUNDLES} concurrent transaction Bundles on one patient: {len(won)} committed (versions 2..{len(won) + 1}),"
        f" {len(lost)} refused with {sorted({statuses[n] for n in lost})}; partial writes 0, 5xx 0"
    )


def _stored_statuses(engine: Engine, tenant: str, patient_id: str) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.exec(
            select(PlanStatusRow)
            .where(col(PlanStatusRow.tenant_id) == tenant, col(PlanStatusRow.patient_id) == patient_id)
            .order_by(col(PlanStatusRow.enrollment_id))
        ).all()
        return [row.model_dump() for row in rows]


def test_plan_status_after_concurrent_writes_equals_a_fresh_recompute(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]], base_url: str
) -> None:
    headers = auth(tenant, "ehr-system")
    api = ApiDriver(client, headers)
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id))

    def send(http: httpx.Client, n: int) -> httpx.Response:
        body = questionnaire_body(
            patient_id,
            authored_at=f"2026-10-{6 + n % 20:02d}T{8 + n // 20:02d}:30:00+00:00",
            answers=[{"link_id": f"/{code}", "value_integer": n % 4} for code in PHQ9],
        )
        return http.post(f"{API}/questionnaire-responses", json=body, headers=headers)

    responses = _together(QUESTIONNAIRES, send, base_url)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * QUESTIONNAIRES, [r.text[:300] for r in responses if r.status_code != 201]

    stored = _stored_statuses(engine, tenant, patient_id)
    assert stored, "the enrollment has no stored plan status"
    with Session(engine) as session:
        for row in stored:
            recompute_patient(session, tenant, patient_id, as_of=row["computed_at"])
        session.flush()
        fresh = [
            r.model_dump()
            for r in session.exec(
                select(PlanStatusRow)
                .where(col(PlanStatusRow.tenant_id) == tenant, col(PlanStatusRow.patient_id) == patient_id)
                .order_by(col(PlanStatusRow.enrollment_id))
            )
        ]
        session.rollback()
    volatile = {"computed_at", "next_recompute_at"}
    differing = {
        key
        for before, after in zip(stored, fresh, strict=True)
        for key in before
        if key not in volatile and before[key] != after[key]
    }
    assert not differing, {k: (stored[0][k], fresh[0][k]) for k in differing}
    assert len(stored[0]["score_trend"]) == QUESTIONNAIRES
    print(
        f"\n{QUESTIONNAIRES} concurrent questionnaire creates on one enrolled patient: stored plan status equals a "
        f"fresh recompute ({len(stored[0]['score_trend'])} scores in the trend, status {stored[0]['status']})"
    )
