"""A user's own time zone: set on a form, shown on every page for that user only, cleared back to the hospital's;
refused for a name that is not a zone or a form without its token; audited."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.db.unit_of_work import unit_of_work
from service.records.audit import AuditEvent
from service.records.user_time_zone import UserTimeZone
from service.tenants import set_tenant_zone
from tests.builders import ApiDriver, administration_body
from tests.web.conftest import Browser, at_risk_patient


def _own_zones(engine: Engine, tenant: str) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.exec(select(UserTimeZone).where(col(UserTimeZone.tenant_id) == tenant))
        return {r.subject: r.time_zone for r in rows}


def test_a_user_reads_every_page_in_their_own_zone_until_they_go_back_to_the_hospitals(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    with unit_of_work(web_engine) as session:
        set_tenant_zone(session, tenant, "Europe/Oslo")
    api = api_as(tenant)
    patient_id = at_risk_patient(api)
    api.create(
        "ketamine-administrations",
        administration_body(patient_id, started_at="2026-11-30T20:30:00+00:00", ended_at="2026-11-30T21:10:00+00:00"),
    )
    travelling, at_the_clinic = browser(), browser()
    travelling.sign_in(tenant, "clinician", subject="dr-away")
    at_the_clinic.sign_in(tenant, "clinician", subject="dr-here")

    form = travelling.get("/time-zone")
    assert form.status_code == 200
    assert '<option value="" selected>The hospital\'s zone (Europe/Oslo)</option>' in form.text
    saved = travelling.post("/time-zone", {"time_zone": "America/Chicago"}, csrf=travelling.csrf())
    assert (saved.status_code, saved.headers["location"]) == (303, "/time-zone?saved=true")
    assert "Saved: times are shown in America/Chicago." in travelling.get(saved.headers["location"]).text
    assert _own_zones(web_engine, tenant) == {"dr-away": "America/Chicago"}

    away = travelling.get(f"/patients/{patient_id}").text
    assert "30 Nov 2026 14:30 CST" in away  # 20:30 UTC
    assert "Times are shown in your own time zone (America/Chicago); the hospital's is Europe/Oslo." in away
    assert "Times in America/Chicago" in travelling.get("/").text  # the caseload too, and the link to change it
    here = at_the_clinic.get(f"/patients/{patient_id}").text  # another user keeps the hospital's zone
    assert "30 Nov 2026 21:30 CET" in here and "CST" not in here
    assert "Times are shown in the hospital's time zone (Europe/Oslo)." in here

    travelling.get("/time-zone")
    back = travelling.post("/time-zone", {"time_zone": ""}, csrf=travelling.csrf())
    assert back.status_code == 303
    assert _own_zones(web_engine, tenant) == {}
    assert "30 Nov 2026 21:30 CET" in travelling.get(f"/patients/{patient_id}").text
    with Session(web_engine) as session:
        audited = session.exec(
            select(AuditEvent).where(
                col(AuditEvent.tenant_id) == tenant, col(AuditEvent.record_kind) == "user-time-zones"
            )
        ).all()
    assert [(e.action, e.actor, e.outcome) for e in audited if e.action == "update"] == [
        ("update", "dr-away", "success")
    ] * 2


def test_a_name_that_is_not_a_zone_or_a_form_without_its_token_changes_nothing(
    browser: Callable[..., Browser], tenant: str, web_engine: Engine
) -> None:
    b = browser()
    b.sign_in(tenant, "coordinator", subject="co-1")
    b.get("/time-zone")
    refused = b.post("/time-zone", {"time_zone": "Mars/Olympus_Mons"}, csrf=b.csrf())
    assert refused.status_code == 422
    assert "is not an IANA time zone" in refused.text
    forged = b.post("/time-zone", {"time_zone": "Asia/Tokyo"})
    assert forged.status_code == 403
    assert _own_zones(web_engine, tenant) == {}


def test_the_zone_page_needs_a_sign_in(browser: Callable[..., Browser]) -> None:
    page = browser().get("/time-zone")
    assert page.status_code == 303 and page.headers["location"].startswith("/sign-in")


def test_an_administrator_reads_the_sync_page_in_their_own_zone(
    browser: Callable[..., Browser], tenant: str, web_engine: Engine
) -> None:
    b = browser()
    b.sign_in(tenant, "admin", subject="ops-1")
    b.get("/time-zone")
    assert b.post("/time-zone", {"time_zone": "Asia/Tokyo"}, csrf=b.csrf()).status_code == 303
    page = b.get("/sync")
    assert page.status_code == 200
    assert "Times in Asia/Tokyo" in page.text
    assert "Times are shown in your own time zone (Asia/Tokyo); the hospital's is UTC." in page.text
