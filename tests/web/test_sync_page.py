"""The EHR sync page (administrators only): counts per target, errors, dead letters and their replay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.outbox import OutboxMessage
from tests.builders import ApiDriver, administration_body, sync_target_body
from tests.web.conftest import Browser, enrolled_patient


def _kill_all(engine: Engine, tenant: str) -> list[int]:
    """Make every outbox row of the tenant a dead letter with an EHR error, as the sync worker would."""
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant)).all()
        for row in rows:
            row.status, row.attempts, row.last_status_code = "dead", 8, 422
            row.next_attempt_at = datetime.now(UTC) + timedelta(days=365)
            row.last_error = {
                "resourceType": "OperationOutcome",
                "issue": [{"code": "invalid", "diagnostics": "Unknown code"}],
            }
            session.add(row)
        session.commit()
        return [row.id for row in rows if row.id is not None]


def _row(engine: Engine, message_id: int) -> OutboxMessage:
    with Session(engine) as session:
        found = session.get(OutboxMessage, message_id)
        assert found is not None
        return found


def _setup(api_as: Callable[..., ApiDriver], tenant: str, engine: Engine) -> tuple[str, list[int]]:
    api_as(tenant, "admin").create(
        "sync/targets", sync_target_body(name="Epic test", push=["ketamine-administrations"])
    )
    api = api_as(tenant)
    patient_id = enrolled_patient(api)
    api.create("ketamine-administrations", administration_body(patient_id))
    return patient_id, _kill_all(engine, tenant)


def test_admin_sees_counts_errors_and_replays_a_dead_letter(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    patient_id, dead = _setup(api_as, tenant, web_engine)
    b = browser()
    b.sign_in(tenant, "admin")
    page = b.get("/sync")
    assert page.status_code == 200
    assert "Epic test" in page.text and "Unknown code" in page.text
    assert f'action="/sync/dead-letters/{dead[0]}/replay"' in page.text
    for token in (None, "wrong"):
        assert b.post(f"/sync/dead-letters/{dead[0]}/replay", {}, csrf=token).status_code == 403
        assert _row(web_engine, dead[0]).status == "dead"
    replayed = b.post(f"/sync/dead-letters/{dead[0]}/replay", {}, csrf=b.csrf())
    assert replayed.status_code == 303
    row = _row(web_engine, dead[0])
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.next_attempt_at <= datetime.now(UTC)
    assert "queued again" in b.get(replayed.headers["location"]).text
    # Only a dead row can be replayed.
    assert b.post(f"/sync/dead-letters/{dead[0]}/replay", {}, csrf=b.csrf()).status_code == 404

    clinician = browser()
    clinician.sign_in(tenant, "clinician")
    patient_page = clinician.get(f"/patients/{patient_id}")
    assert "Epic test" in patient_page.text


def test_sync_page_is_for_admins_of_their_own_tenant(
    browser: Callable[..., Browser],
    api_as: Callable[..., ApiDriver],
    tenant: str,
    new_tenant: Callable[[], str],
    web_engine: Engine,
) -> None:
    for role in ("coordinator", "clinician"):
        b = browser()
        b.sign_in(tenant, role)
        assert b.get("/sync").status_code == 403
    other = new_tenant()
    _, theirs = _setup(api_as, other, web_engine)
    admin = browser()
    admin.sign_in(tenant, "admin")
    page = admin.get("/sync")
    assert "Epic test" not in page.text
    assert admin.post(f"/sync/dead-letters/{theirs[0]}/replay", {}, csrf=admin.csrf()).status_code == 404
    assert _row(web_engine, theirs[0]).status == "dead"
