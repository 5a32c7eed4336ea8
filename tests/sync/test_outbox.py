"""Every stored change of a record a target takes leaves an outbox row, in the same transaction."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.outbox import OutboxMessage
from tests.builders import API, ApiDriver, administration_body, cbt_body, sync_target_body


def _outbox(engine: Engine, tenant: str) -> list[OutboxMessage]:
    with Session(engine) as session:
        query = select(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant).order_by(col(OutboxMessage.id))
        return list(session.exec(query))


def test_writes_are_queued_for_the_targets_that_take_them(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    admin = ApiDriver(client, auth(tenant, "admin"))
    epic = admin.create("sync/targets", sync_target_body(push=["ketamine-administrations"]))["id"]
    other = admin.create("sync/targets", sync_target_body(push=["ketamine-administrations", "cbt-sessions"]))["id"]
    admin.create("sync/targets", sync_target_body(push=["ketamine-administrations"], enabled=False))
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patient_id = api.patient()
    given = api.create("ketamine-administrations", administration_body(patient_id))
    session = api.create("cbt-sessions", cbt_body(patient_id))
    rows = _outbox(engine, tenant)
    assert {(r.target_id, r.record_kind, r.record_id, r.record_version) for r in rows} == {
        (epic, "ketamine-administrations", given["id"], 1),
        (other, "ketamine-administrations", given["id"], 1),
        (other, "cbt-sessions", session["id"], 1),
    }
    assert all(r.status == "pending" and r.patient_id == patient_id for r in rows)
    assert len({r.correlation_id for r in rows}) == 3

    changed = client.patch(
        f"{API}/ketamine-administrations/{given['id']}",
        json={"lot_number": "K77"},
        headers={**api.headers, "If-Match": 'W/"1"'},
    )
    assert changed.status_code == 200
    versions = sorted(r.record_version for r in _outbox(engine, tenant) if r.record_id == given["id"])
    assert versions == [1, 1, 2, 2]


def test_a_resend_and_a_refused_write_queue_nothing(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    ApiDriver(client, auth(tenant, "admin")).create("sync/targets", sync_target_body(push=["cbt-sessions"]))
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    patient_id = api.patient()
    body = cbt_body(patient_id)
    api.create("cbt-sessions", body)
    api.create("cbt-sessions", body, expect=200)
    api.create("cbt-sessions", cbt_body(patient_id, session_number=0), expect=422)
    assert len(_outbox(engine, tenant)) == 1
