"""Issue #23, part 4: the SPRAVATO REMS monitoring form of an esketamine session — prefilled page and PDF, every
field present (what Tandem holds, the rest marked for the clinician), and the submission recorded back on the
session, which closes its REMS-overdue reason. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.demo import generate_demo_tenant
from service.demo_loader import load_demo_tenant
from service.plan_status import ESKETAMINE_CBT
from service.records.audit import AuditEvent
from service.settings import Settings
from tests.builders import API, ApiDriver, administration_body, enrollment_body
from tests.rems.support import (
    MISSING,
    NOW,
    esketamine_patient,
    esketamine_session,
    form_fields,
    headers,
    pdf_text,
    plan_reasons,
    submit,
)
from tests.web.conftest import Browser

# Fields Tandem never holds: always left to the clinician.
NEVER_HELD = {
    "rems_enrolled", "med_benzodiazepines", "med_non-benzodiazepine", "med_psychostimulants", "med_monoamine",
    "med_opioids", "hcp_telephone", "hcp_email", "setting_address", "setting_city", "setting_state", "setting_zip",
    "ready_to_leave", "vitals_ok_before", "vitals_ok_end", "respiratory_depression", "resolved",
}  # fmt: skip


def _browser(client: TestClient, settings: Settings, tenant: str, role: str = "clinician") -> Browser:
    browser = Browser(TestClient(client.app), settings)
    browser.sign_in(tenant, role, subject=f"{role}-kim")  # type: ignore[arg-type]
    return browser


def _page(browser: Browser, patient_id: str, session_id: str, suffix: str = "") -> Any:
    return browser.get(f"/patients/{patient_id}/sessions/{session_id}/rems-form{suffix}")


@pytest.fixture
def api(client: TestClient, settings: Settings, tenant: str) -> ApiDriver:
    return ApiDriver(client, headers(settings, tenant, "ehr-system"))


def test_a_demo_esketamine_session_shows_every_field_it_has_and_marks_the_rest(
    client: TestClient, engine: Engine, settings: Settings, tenant: str
) -> None:
    demo = generate_demo_tenant(seed=5, patients=3, now=NOW)  # patient 2 (n % 3 == 2) is on esketamine
    load_demo_tenant(engine, tenant_id=tenant, demo=demo, settings=settings)
    listed = client.get(f"{API}/ketamine-administrations", params={"limit": 200}, headers=headers(settings, tenant))
    sessions = sorted((s for s in listed.json()["items"] if s["drug"] == "esketamine"), key=lambda s: s["started_at"])
    assert len(sessions) >= 2, "the demo's esketamine patient has at least two sessions"
    record = sessions[1]  # a later session: Tandem holds an earlier one
    patient = client.get(f"{API}/patients/{record['patient_id']}", headers=headers(settings, tenant)).json()
    browser = _browser(client, settings, tenant)
    page = _page(browser, record["patient_id"], record["id"])
    assert page.status_code == 200, page.text
    fields = form_fields(page.text)
    start = datetime.fromisoformat(record["started_at"]).astimezone(UTC)  # the demo hospital's zone is UTC
    pre, post = record["vital_signs"]  # the demo takes BP 10 min before and 40 min after the first device
    expected = {
        "first_name": patient["given_name"],
        "last_name": patient["family_name"],
        "birthdate": datetime.fromisoformat(patient["birth_date"]).strftime("%m/%d/%Y"),
        "sex": patient["sex"].capitalize(),
        "first_treatment": "No",
        "setting_name": f"Test hospital {tenant}",
        "treatment_date": f"{start:%m/%d/%Y}",
        "first_device_at": f"{start:%H:%M} UTC",
        "dose": f"{record['dose_mg']:g} mg",
        "lot_number": record["lot_number"],
        "total_minutes": "130",  # 10 min of dosing, then 120 observed
        "bp_before": f"{pre['systolic_mmhg']}/{pre['diastolic_mmhg']} mmHg",
        "bp_40_min": f"{post['systolic_mmhg']}/{post['diastolic_mmhg']} mmHg",
        "dissociation": f"Yes (CADSS {record['dissociation_score']} recorded)",
    }
    if record["sedation_score"] < 5:
        expected["sedation"] = f"Yes (MOAA/S {record['sedation_score']} recorded)"
    for key, value in expected.items():
        missing, shown = fields[key]
        assert not missing and value in shown, f"{key}: want {value!r}, page shows {shown!r}"
    # held nowhere in Tandem, or not in the demo: each marked, with the words
    missing_here = {*NEVER_HELD, "middle_initial", "hcp_first_name", "hcp_last_name", "bp_end", "adverse_events"}
    if record["sedation_score"] == 5:
        missing_here.add("sedation")
    for key in missing_here:
        missing, shown = fields[key]
        assert missing and MISSING in shown, f"{key} should be marked missing: {shown!r}"
    assert set(fields) == set(expected) | missing_here, "every field of the form is on the page, once"
    assert "Tandem does not submit this form to the SPRAVATO REMS" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    pdf = _page(browser, record["patient_id"], record["id"], ".pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for value in (record["lot_number"], expected["bp_before"], expected["birthdate"], "SPRAVATO REMS",
                  "Tandem does not submit this form", "missing - to be completed by the clinician"):  # fmt: skip
        assert value in text, f"{value!r} not in the PDF"


def test_a_session_without_vital_signs_marks_blood_pressure_missing_and_takes_those_sent_on_their_own(
    client: TestClient, settings: Settings, tenant: str, api: ApiDriver
) -> None:
    patient_id = esketamine_patient(api)
    record = esketamine_session(api, patient_id, vital_signs=[])
    browser = _browser(client, settings, tenant)
    fields = form_fields(_page(browser, patient_id, record["id"]).text)
    for key in ("bp_before", "bp_40_min", "bp_end"):
        assert fields[key][0] and MISSING in fields[key][1], key
    assert "no pulse oximetry recorded" in fields["respiratory_depression"][1]
    # a blood pressure the EHR sent on its own, taken 5 min before the dose, is the session's pre-dose check
    taken = datetime.fromisoformat(record["started_at"]) - timedelta(minutes=5)
    api.create("vital-signs", {"patient_id": patient_id, "taken_at": taken.isoformat(), "loinc": "85354-9",
                               "measure": "blood-pressure", "systolic_mmhg": 150, "diastolic_mmhg": 95})  # fmt: skip
    fields = form_fields(_page(browser, patient_id, record["id"]).text)
    assert fields["bp_before"] == (False, fields["bp_before"][1]) and "150/95 mmHg" in fields["bp_before"][1]
    assert fields["bp_40_min"][0] and fields["bp_end"][0]


def test_all_three_blood_pressures_and_the_performer_fill_their_fields(
    client: TestClient, settings: Settings, tenant: str, api: ApiDriver
) -> None:
    patient_id = esketamine_patient(api)
    performer = api.create("practitioners", {"family_name": "Adeyemi", "given_name": "Tola", "role": "psychiatrist"})
    record = esketamine_session(api, patient_id, performer_id=performer["id"], sedation_score=5, dissociation_score=0,
                                adverse_events=[{"description": "nausea", "serious": False}])  # fmt: skip
    fields = form_fields(_page(_browser(client, settings, tenant), patient_id, record["id"]).text)
    assert "128/82 mmHg" in fields["bp_before"][1]
    assert "146/90 mmHg" in fields["bp_40_min"][1]
    assert "130/80 mmHg" in fields["bp_end"][1]
    assert "Tola" in fields["hcp_first_name"][1] and "Adeyemi" in fields["hcp_last_name"][1]
    assert "84 mg" in fields["dose"][1] and "LOT-E42" in fields["lot_number"][1]
    assert "nausea" in fields["adverse_events"][1] and not fields["adverse_events"][0]
    # MOAA/S 5 and CADSS 0 do not prove there was none: the answers stay the clinician's, with what Tandem holds
    assert fields["sedation"][0] and "MOAA/S 5 recorded" in fields["sedation"][1]
    assert fields["dissociation"][0] and "CADSS 0 recorded" in fields["dissociation"][1]
    assert "lowest SpO2 96 %" in fields["respiratory_depression"][1]
    # the first esketamine session Tandem holds: whether it is the first treatment is not known
    assert fields["first_treatment"][0]


def test_a_ketamine_iv_session_has_no_rems_form(
    client: TestClient, settings: Settings, tenant: str, api: ApiDriver
) -> None:
    patient_id = api.patient()
    record = api.create("ketamine-administrations", administration_body(patient_id))
    browser = _browser(client, settings, tenant)
    for suffix in ("", ".pdf"):
        page = _page(browser, patient_id, record["id"], suffix)
        assert page.status_code == 404
        assert "the SPRAVATO REMS form is for esketamine only" in page.text
    refused = submit(client, settings, tenant, record["id"], NOW.isoformat())
    assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
    assert "esketamine only" in refused.json()["detail"]
    stored = client.get(f"{API}/ketamine-administrations/{record['id']}", headers=headers(settings, tenant)).json()
    assert stored["rems_form_submitted_at"] is None


def test_recording_the_submission_closes_the_rems_overdue_reason_once(
    client: TestClient, engine: Engine, settings: Settings, tenant: str, api: ApiDriver
) -> None:
    patient_id = esketamine_patient(api)
    record = esketamine_session(api, patient_id, days_ago=10)  # due 7 days after: overdue
    assert ("rems_form_overdue", record["id"], True) in plan_reasons(client, settings, tenant, patient_id)
    when = (NOW - timedelta(days=1)).replace(microsecond=0)
    first = submit(client, settings, tenant, record["id"], when.isoformat())
    assert first.status_code == 200, first.text
    assert first.json()["already_recorded"] is False
    assert first.json()["rems_form_submitted_by"] == "clinician-kim"
    after = plan_reasons(client, settings, tenant, patient_id)
    assert not [r for r in after if r[0] == "rems_form_overdue" and r[1] == record["id"] and r[2]]
    stored = client.get(f"{API}/ketamine-administrations/{record['id']}", headers=headers(settings, tenant)).json()
    assert datetime.fromisoformat(stored["rems_form_submitted_at"]) == when
    assert stored["rems_form_submitted_by"] == "clinician-kim" and stored["version"] == record["version"] + 1
    # again, with another time: nothing changes, and the answer says so
    again = submit(client, settings, tenant, record["id"], NOW.isoformat())
    assert again.status_code == 200 and again.json()["already_recorded"] is True
    assert datetime.fromisoformat(again.json()["rems_form_submitted_at"]) == when
    unchanged = client.get(f"{API}/ketamine-administrations/{record['id']}", headers=headers(settings, tenant)).json()
    assert unchanged["version"] == stored["version"]
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEvent).where(
                col(AuditEvent.tenant_id) == tenant,
                col(AuditEvent.record_id) == record["id"],
                col(AuditEvent.action) == "update",
            )
        ).all()
    assert len(rows) == 2 and {r.outcome for r in rows} == {"success"}
    # the page shows it, with no form left to post
    page = _page(_browser(client, settings, tenant), patient_id, record["id"])
    assert "recorded by clinician-kim" in page.text and "/rems-form/submission" not in page.text


def test_the_page_form_records_the_submission_with_its_csrf_token(
    client: TestClient, settings: Settings, tenant: str, api: ApiDriver
) -> None:
    patient_id = esketamine_patient(api)
    record = esketamine_session(api, patient_id, days_ago=9)
    browser = _browser(client, settings, tenant)
    action = f"/patients/{patient_id}/sessions/{record['id']}/rems-form/submission"
    _page(browser, patient_id, record["id"])
    forged = browser.post(action, {"submitted_at": "2026-01-01T10:00"}, csrf="not-the-token")
    assert forged.status_code == 403
    _page(browser, patient_id, record["id"])
    local = (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")  # the reader's zone: the demo hospital's UTC
    posted = browser.post(action, {"submitted_at": local}, csrf=browser.csrf())
    assert posted.status_code == 303 and posted.headers["location"].endswith("rems-form?recorded=1")
    shown = browser.get(posted.headers["location"])
    assert "Recorded: the form's submission is stored on the session." in shown.text
    assert "recorded by clinician-kim" in shown.text
    assert ("rems_form_overdue", record["id"], True) not in plan_reasons(client, settings, tenant, patient_id)


def test_bad_submissions_are_refused_and_change_nothing(
    client: TestClient, settings: Settings, tenant: str, new_tenant: Callable[[], str], api: ApiDriver
) -> None:
    patient_id = esketamine_patient(api)
    record = esketamine_session(api, patient_id, days_ago=10)
    future = submit(client, settings, tenant, record["id"], (NOW + timedelta(hours=2)).isoformat())
    assert future.status_code == 422 and "future" in future.text
    before = submit(client, settings, tenant, record["id"], (NOW - timedelta(days=11)).isoformat())
    assert before.status_code == 422 and "before the session" in before.text
    naive = submit(client, settings, tenant, record["id"], "2026-12-01T10:00:00")
    assert naive.status_code == 422
    unknown = submit(client, settings, tenant, "no-such-session", NOW.isoformat())
    assert unknown.status_code == 404
    foreign = submit(client, settings, new_tenant(), record["id"], NOW.isoformat())
    assert foreign.status_code == 404
    for role in ("coordinator", "ehr-system", "admin"):
        assert submit(client, settings, tenant, record["id"], NOW.isoformat(), role=role).status_code == 403, role
    url = f"{API}/ketamine-administrations/{record['id']}/rems-form/submission"
    extra = client.post(url, json={"submitted_at": NOW.isoformat(), "by": "me"}, headers=headers(settings, tenant))
    assert extra.status_code == 422
    stored = client.get(f"{API}/ketamine-administrations/{record['id']}", headers=headers(settings, tenant)).json()
    assert stored["rems_form_submitted_at"] is None and stored["version"] == record["version"]
    assert ("rems_form_overdue", record["id"], True) in plan_reasons(client, settings, tenant, patient_id)


def test_the_page_is_the_hospitals_clinicians_only(
    client: TestClient, settings: Settings, tenant: str, new_tenant: Callable[[], str], api: ApiDriver
) -> None:
    patient_id = esketamine_patient(api)
    record = esketamine_session(api, patient_id)
    other = esketamine_patient(api)
    assert _page(_browser(client, settings, new_tenant()), patient_id, record["id"]).status_code == 404
    for role in ("coordinator", "admin"):
        assert _page(_browser(client, settings, tenant, role), patient_id, record["id"]).status_code == 403, role
    clinician = _browser(client, settings, tenant)
    assert _page(clinician, other, record["id"]).status_code == 404  # the session of another patient
    assert _page(clinician, patient_id, "no-such-session", ".pdf").status_code == 404
    anonymous = Browser(TestClient(client.app), settings)
    assert anonymous.get(f"/patients/{patient_id}/sessions/{record['id']}/rems-form").status_code == 303


def test_the_form_is_due_when_the_enrolments_protocol_says(
    client: TestClient, settings: Settings, tenant: str, api: ApiDriver
) -> None:
    protocol = ESKETAMINE_CBT.model_dump(mode="json")
    protocol.update(id="esketamine-3-day-rems", version="1")
    protocol["safety"]["rems_form_days"] = 3
    added = client.post(f"{API}/protocols", json=protocol, headers=headers(settings, tenant, "admin"))
    assert added.status_code == 201, added.text
    patient_id = api.patient()
    start = (NOW - timedelta(days=20)).date().isoformat()
    api.create("enrollments", enrollment_body(patient_id, protocol_id="esketamine-3-day-rems", start_date=start))
    record = esketamine_session(api, patient_id, days_ago=4)
    page = _page(_browser(client, settings, tenant), patient_id, record["id"])
    due = datetime.fromisoformat(record["started_at"]) + timedelta(days=3)
    assert f"form due by {due.astimezone(UTC):%d %b %Y}" in page.text
    assert ("rems_form_overdue", record["id"], True) in plan_reasons(client, settings, tenant, patient_id)
