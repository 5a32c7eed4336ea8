"""The request's unit of work is committed by the edge before the response is sent (issue #17, items 1 and 8).

FastAPI's default ("request") scope runs a yield dependency's exit after the response went out: a commit failing
there would already have been answered 201. These tests make COMMIT itself fail and check what the client hears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from service.db.unit_of_work import UnitOfWork, unit_of_work
from service.records.patient import Patient
from tests.builders import API, patient_body


@pytest.fixture
def failing_commit(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The first unit of work's COMMIT (the request's) raises as a dropped connection does; its rows were flushed,
    never committed. Later ones (the failure's audit row) commit."""
    calls: list[int] = []
    original = OrmSession.commit

    def commit(self: OrmSession) -> None:
        if isinstance(self, UnitOfWork) and not calls:
            calls.append(1)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        original(self)

    monkeypatch.setattr(OrmSession, "commit", commit)
    yield calls


def _stored(engine: Engine, tenant: str, family_name: str) -> int:
    with Session(engine) as session:
        return len(
            session.exec(
                select(Patient).where(col(Patient.tenant_id) == tenant, col(Patient.family_name) == family_name)
            ).all()
        )


def test_a_failed_commit_is_answered_503_outcome_unknown_not_201(
    client: TestClient,
    engine: Engine,
    tenant: str,
    auth: Callable[..., dict[str, str]],
    failing_commit: list[int],
) -> None:
    body = patient_body(family_name="Commitfails")
    response = client.post(f"{API}/patients", json=body, headers=auth(tenant, role="ehr-system"))
    assert failing_commit, "the route's unit of work reached its commit"
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    detail = response.json()["detail"]
    assert "outcome is unknown" in detail and "nothing was stored" not in detail
    assert _stored(engine, tenant, "Commitfails") == 0  # here the commit never ran: rolled back


def test_a_failed_commit_on_the_fhir_surface_is_an_operation_outcome_503(
    client: TestClient,
    tenant: str,
    auth: Callable[..., dict[str, str]],
    failing_commit: list[int],
) -> None:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": "MRN-commit-fails"}],
        "name": [{"family": "Commitfails", "given": ["Fhir"]}],
        "birthDate": "1980-01-01",
    }
    response = client.post("/fhir/Patient", json=patient, headers=auth(tenant, role="ehr-system"))
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "outcome is unknown" in str(body) and "nothing was stored" not in str(body)


def test_domain_code_cannot_commit_a_unit_of_work(engine: Engine) -> None:
    with pytest.raises(TypeError, match="the edge commits"), unit_of_work(engine) as uow:
        uow.commit()


def test_a_unit_of_work_rolls_back_when_its_block_raises(engine: Engine, tenant: str) -> None:
    with pytest.raises(RuntimeError), unit_of_work(engine) as uow:
        uow.add(
            Patient(
                tenant_id=tenant,
                source_system="urn:test",
                source_id="rolled-back",
                family_name="Rolledback",
                birth_date=date(1980, 1, 1),
                sex="female",
            )
        )
        uow.flush()
        raise RuntimeError("the work failed")
    assert _stored(engine, tenant, "Rolledback") == 0
