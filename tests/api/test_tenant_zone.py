"""A tenant's time zone: the plan status counts days in it, the pages show times in it (issue #21, item 4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from service.caseload.tables import PlanStatusRow
from service.cli import app
from service.db.unit_of_work import unit_of_work
from service.errors import InvalidRequest
from service.records.tenant import Tenant
from service.settings import get_settings
from service.tenants import checked_zone, register_tenant, set_tenant_zone, tenant_exists
from tests.builders import API, PHQ9_ITEMS, ApiDriver, administration_body, enrollment_body, questionnaire_body

# 10:00 and 12:00 UTC on one day; in Auckland (UTC+13 in December) 23:00 and then 01:00 of the next day.
DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
ANSWERED, DOSED = DAY + timedelta(hours=10), DAY + timedelta(hours=12)


def _item9_then_dose(api: ApiDriver) -> str:
    patient_id = api.patient()
    api.create("enrollments", enrollment_body(patient_id, start_date=(DAY - timedelta(days=1)).date().isoformat()))
    api.create(
        "ketamine-administrations",
        administration_body(
            patient_id,
            started_at=DOSED.isoformat(),
            ended_at=(DOSED + timedelta(minutes=40)).isoformat(),
            vital_signs=[],
        ),
    )
    answers = [{"link_id": code, "value_integer": 1} for code in PHQ9_ITEMS]
    api.create(
        "questionnaire-responses", questionnaire_body(patient_id, authored_at=ANSWERED.isoformat(), answers=answers)
    )
    return patient_id


def _item9_reason(api: ApiDriver, patient_id: str) -> str:
    status = api.client.get(f"{API}/patients/{patient_id}/plan-status", headers=api.headers).json()
    [reason] = [r for r in status["statuses"][0]["reasons"] if r["code"] == "phq9_item9_positive"]
    return str(reason["message"])


def test_the_plan_status_counts_days_in_the_hospital_zone(
    client: TestClient, engine: Engine, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    utc, auckland = new_tenant(), new_tenant()
    with unit_of_work(engine) as session:
        set_tenant_zone(session, auckland, "Pacific/Auckland")
    in_utc = _item9_reason(api := ApiDriver(client, auth(utc)), _item9_then_dose(api))
    in_nz = _item9_reason(api := ApiDriver(client, auth(auckland)), _item9_then_dose(api))
    # In UTC the answer and the dose fall on one day: assess before dosing. In Auckland the dose is the next day.
    assert "assess the patient before dosing that day" in in_utc
    assert "contact the patient today" in in_nz
    assert f"on {ANSWERED:%-d %b %Y}" in in_utc
    assert f"on {ANSWERED.astimezone(ZoneInfo('Pacific/Auckland')):%-d %b %Y}" in in_nz


def test_moving_a_tenant_to_another_zone_makes_its_statuses_due(
    client: TestClient, engine: Engine, new_tenant: Callable[[], str], auth: Callable[..., dict[str, str]]
) -> None:
    tenant, other = new_tenant(), new_tenant()
    for t in (tenant, other):
        ApiDriver(client, auth(t)).create("enrollments", enrollment_body(ApiDriver(client, auth(t)).patient()))
    soon = datetime.now(UTC) + timedelta(minutes=1)
    with unit_of_work(engine) as session:
        set_tenant_zone(session, tenant, "Europe/Oslo")
        due = session.exec(
            select(PlanStatusRow.tenant_id).where(
                col(PlanStatusRow.tenant_id).in_([tenant, other]), col(PlanStatusRow.next_recompute_at) <= soon
            )
        ).all()
    assert due == [tenant]  # the other tenant's statuses are left alone


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "", "CET; DROP TABLE tenants", "utc "])
def test_a_zone_that_is_not_iana_is_refused_and_changes_nothing(engine: Engine, zone: str) -> None:
    with pytest.raises(InvalidRequest, match="is not an IANA time zone"):
        checked_zone(zone)
    with unit_of_work(engine) as session, pytest.raises(InvalidRequest):
        register_tenant(session, tenant_id="zone-refused", name="x", time_zone=zone)
    with Session(engine) as session:
        assert not tenant_exists(session, "zone-refused")


def test_the_cli_sets_a_zone_and_says_what_to_do_next(
    monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine, new_tenant: Callable[[], str]
) -> None:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    get_settings.cache_clear()
    tenant = new_tenant()
    runner = CliRunner()
    refused = runner.invoke(app, ["tenant", "set-zone", tenant, "Mars/Olympus_Mons"])
    assert refused.exit_code == 2 and "not an IANA time zone" in refused.output
    done = runner.invoke(app, ["tenant", "set-zone", tenant, "America/Chicago"])
    assert done.exit_code == 0, done.output
    assert "tandem status sweep" in " ".join(done.output.split())
    with Session(engine) as session:
        assert session.exec(select(Tenant.time_zone).where(Tenant.id == tenant)).one() == "America/Chicago"
