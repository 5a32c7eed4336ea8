"""The patient page and flag acknowledgement: CSRF, roles, tenant isolation, audit and security headers."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.caseload.tables import FlagAcknowledgement
from service.db.unit_of_work import unit_of_work
from service.patient_status import JUST_ACKNOWLEDGED
from service.records.audit import AuditEvent
from service.tenants import set_tenant_zone
from tests.builders import ApiDriver, administration_body, cbt_body, sync_target_body
from tests.web.conftest import Browser, at, at_risk_patient, enrolled_patient, phq9, stored_status


def test_a_psychotherapy_visit_of_unstated_modality_says_so_on_the_page(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    api = api_as(tenant)
    patient_id = enrolled_patient(api, family_name="Modalityless")
    begun = at(1)
    api.create(
        "cbt-sessions",
        cbt_body(
            patient_id,
            planned_start=begun,
            actual_start=begun,
            actual_end=None,
            modality="psychotherapy-unspecified",
            visit_types=[{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "90837"}]}],
        ),
    )
    b = browser()
    b.sign_in(tenant, "clinician")
    text = b.get(f"/patients/{patient_id}").text
    assert "Psychotherapy session (CBT not stated) 1: attended" in text
    assert "recorded as psychotherapy without saying it was CBT" in text  # the plan status's note
    assert "CBT session 1" not in text


def _acks(engine: Engine, tenant: str) -> list[FlagAcknowledgement]:
    with Session(engine) as session:
        return list(session.exec(select(FlagAcknowledgement).where(col(FlagAcknowledgement.tenant_id) == tenant)))


def _ack_form(b: Browser, patient_id: str, note: str) -> dict[str, str]:
    page = b.get(f"/patients/{patient_id}")
    assert page.status_code == 200
    status = page.text
    enrollment = status.split('name="enrollment_id" value="')[1].split('"')[0]
    occurrence = status.split('name="occurrence_id" value="')[1].split('"')[0]
    return {"enrollment_id": enrollment, "code": "phq9_item9_positive", "occurrence_id": occurrence, "note": note}


def test_patient_page_explains_the_status_and_shows_the_records(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    api = api_as(tenant)
    patient_id = at_risk_patient(api)
    given = api.create(
        "ketamine-administrations",
        administration_body(patient_id, started_at=at(0.5), ended_at=at(0.47), vital_signs=[]),
    )
    api.create(
        "cbt-sessions",
        cbt_body(patient_id, planned_start=at(0.4), actual_start=None, actual_end=None, status="no-show"),
    )
    b = browser()
    b.sign_in(tenant, "clinician")
    page = b.get(f"/patients/{patient_id}")
    assert page.status_code == 200
    text = page.text
    assert "At risk" in text and "▲" in text
    assert "PHQ-9 item 9 (self-harm) positive" in text
    assert 'class="score-chart"' in text and "ref-remission" in text and "session-mark" in text
    assert f'id="rec-{given["id"]}"' in text
    assert "CBT session 1: no show" in text
    assert 'action="/patients/' in text and 'name="note"' in text
    assert "EHR sync of this patient" in text
    for header, value in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ]:
        assert page.headers[header] == value
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_clinician_acknowledges_the_flag_and_sees_the_status_change(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    with unit_of_work(web_engine) as session:
        set_tenant_zone(session, tenant, "Europe/London")
    patient_id = at_risk_patient(api_as(tenant))
    b = browser()
    b.sign_in(tenant, "clinician", subject="dr-lee")
    form = _ack_form(b, patient_id, "Called the patient; safety plan reviewed")
    done = b.post(f"/patients/{patient_id}/acknowledgements", form, csrf=b.csrf())
    assert done.status_code == 303, done.text
    (stored,) = _acks(web_engine, tenant)
    assert done.headers["location"] == f"/patients/{patient_id}?acknowledgement={stored.id}#flags"
    page = b.get(done.headers["location"])
    assert "Acknowledged: PHQ-9 item 9 (self-harm) positive, by dr-lee. Plan status:" in page.text
    # Closed reads as closed: what happened, who closed it and when (with the zone), never the call to action.
    closed = page.text.split('class="reason reason-closed"')[1].split("</li>")[0]
    assert "PHQ-9 item 9 (thoughts of self-harm) answered" in closed
    assert re.search(
        r"<strong>Closed</strong> by dr-lee on \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d \(Europe/London\)\.", closed
    )
    assert "Closed: acknowledged" not in closed  # said once, in the page's words
    assert "What was done: “Called the patient; safety plan reviewed”" in closed
    assert "contact the patient today" not in page.text  # the closed flag no longer asks for the call
    assert stored_status(web_engine, tenant, patient_id).status != "at_risk"
    assert [a.acknowledged_by for a in _acks(web_engine, tenant)] == ["dr-lee"]


INVENTED = "Patient denies all risk; no follow-up needed"


def test_the_confirmation_shows_only_what_the_server_stored(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, new_tenant: Callable[[], str]
) -> None:
    """Issue #16, finding 9: text or a status change in the URL never reaches the page; an acknowledgement id shows
    only when it is this tenant's, this patient's and recent."""
    api = api_as(tenant)
    patient_id = at_risk_patient(api)
    other_patient = at_risk_patient(api, family_name="Otherworth")
    b = browser()
    b.sign_in(tenant, "clinician", subject="dr-lee")
    done = b.post(f"/patients/{patient_id}/acknowledgements", _ack_form(b, patient_id, "Called"), csrf=b.csrf())
    ack_id = done.headers["location"].split("acknowledgement=")[1].split("#")[0]

    elsewhere = browser()
    elsewhere_tenant = new_tenant()
    foreign_patient = at_risk_patient(api_as(elsewhere_tenant))
    elsewhere.sign_in(elsewhere_tenant, "clinician")
    foreign = elsewhere.post(
        f"/patients/{foreign_patient}/acknowledgements",
        _ack_form(elsewhere, foreign_patient, "Called"),
        csrf=elsewhere.csrf(),
    )
    foreign_ack = foreign.headers["location"].split("acknowledgement=")[1].split("#")[0]

    for path in (
        f"/patients/{patient_id}?acknowledged={INVENTED}&was=on_track",
        f"/patients/{patient_id}?acknowledgement={INVENTED}",
        f"/patients/{patient_id}?acknowledgement={foreign_ack}",  # another tenant's
        f"/patients/{other_patient}?acknowledgement={ack_id}",  # another patient's
        f"/patients/{patient_id}?acknowledgement=00000000-0000-4000-8000-000000000000",
    ):
        page = b.get(path)
        assert page.status_code == 200, path
        assert "denies all risk" not in page.text, path
        assert 'class="callout callout-ok" role="status"' not in page.text, path
    assert 'class="callout callout-ok" role="status"' in b.get(f"/patients/{patient_id}?acknowledgement={ack_id}").text


def test_an_old_acknowledgement_link_shows_nothing(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    patient_id = at_risk_patient(api_as(tenant))
    b = browser()
    b.sign_in(tenant, "clinician")
    done = b.post(f"/patients/{patient_id}/acknowledgements", _ack_form(b, patient_id, "Called"), csrf=b.csrf())
    (stored,) = _acks(web_engine, tenant)
    with Session(web_engine) as session:
        row = session.get(FlagAcknowledgement, stored.id)
        assert row is not None
        row.acknowledged_at = row.acknowledged_at - JUST_ACKNOWLEDGED - timedelta(seconds=1)
        session.add(row)
        session.commit()
    assert 'class="callout callout-ok" role="status"' not in b.get(done.headers["location"]).text


def test_acknowledgement_needs_a_note(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    patient_id = at_risk_patient(api_as(tenant))
    b = browser()
    b.sign_in(tenant, "clinician")
    form = _ack_form(b, patient_id, "   ")
    refused = b.post(f"/patients/{patient_id}/acknowledgements", form, csrf=b.csrf())
    assert refused.status_code == 422
    assert "the note is required" in refused.text
    assert _acks(web_engine, tenant) == []


def test_forms_without_the_right_csrf_token_change_nothing(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    patient_id = at_risk_patient(api_as(tenant))
    b = browser()
    b.sign_in(tenant, "clinician")
    form = _ack_form(b, patient_id, "Called")
    other = browser()
    other.sign_in(tenant, "clinician")
    other.get("/")
    for token in (None, "", "forged-token", other.csrf()):
        refused = b.post(f"/patients/{patient_id}/acknowledgements", form, csrf=token)
        assert refused.status_code == 403
        assert "Nothing was changed" in refused.text
        assert refused.headers["cache-control"] == "no-store"
    assert _acks(web_engine, tenant) == []
    assert stored_status(web_engine, tenant, patient_id).status == "at_risk"
    # Sign-out and sign-in forms are protected too.
    assert b.post("/sign-out", {}).status_code == 403
    assert b.get("/").status_code == 200
    assert browser().post("/sign-in", {"token": "x"}).status_code == 403


def test_coordinators_see_flags_but_cannot_acknowledge(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    patient_id = at_risk_patient(api_as(tenant))
    clinician = browser()
    clinician.sign_in(tenant, "clinician")
    form = _ack_form(clinician, patient_id, "Called")
    b = browser()
    b.sign_in(tenant, "coordinator")
    page = b.get(f"/patients/{patient_id}")
    assert "PHQ-9 item 9 (self-harm) positive" in page.text
    assert "A clinician must acknowledge this flag." in page.text
    assert 'name="note"' not in page.text
    refused = b.post(f"/patients/{patient_id}/acknowledgements", form, csrf=b.csrf())
    assert refused.status_code == 403
    assert _acks(web_engine, tenant) == []
    with Session(web_engine) as session:
        failures = session.exec(
            select(AuditEvent).where(
                col(AuditEvent.tenant_id) == tenant,
                col(AuditEvent.record_kind) == "flag-acknowledgements",
                col(AuditEvent.outcome) == "failure",
            )
        ).all()
    assert [(f.actor_role, f.status_code, f.patient_id) for f in failures] == [("coordinator", 403, patient_id)]


def test_admins_do_not_read_patient_pages(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    patient_id = at_risk_patient(api_as(tenant))
    b = browser()
    b.sign_in(tenant, "admin")
    assert b.get(f"/patients/{patient_id}").status_code == 403
    assert b.get("/").headers["location"] == "/sync"


def test_another_tenants_patient_is_not_found(
    browser: Callable[..., Browser],
    api_as: Callable[..., ApiDriver],
    tenant: str,
    new_tenant: Callable[[], str],
    web_engine: Engine,
) -> None:
    other = new_tenant()
    theirs = at_risk_patient(api_as(other), family_name="Elsewhere")
    b = browser()
    b.sign_in(tenant, "clinician")
    page = b.get(f"/patients/{theirs}")
    assert page.status_code == 404
    assert "Elsewhere" not in page.text
    assert b.get("/patients/no-such-patient").status_code == 404
    assert "Elsewhere" not in b.get("/").text
    assert "Elsewhere" not in b.get(f"/?flag=phq9_item9_positive&coordinator={theirs}").text
    clinician_of_other = browser()
    clinician_of_other.sign_in(other, "clinician")
    form = _ack_form(clinician_of_other, theirs, "Called")
    b.get("/")
    refused = b.post(f"/patients/{theirs}/acknowledgements", form, csrf=b.csrf())
    assert refused.status_code == 404
    assert _acks(web_engine, other) == []
    assert stored_status(web_engine, other, theirs).status == "at_risk"


def test_page_views_are_audited_like_api_reads(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    patient_id = at_risk_patient(api_as(tenant))
    b = browser()
    b.sign_in(tenant, "coordinator", subject="coord-kim")
    page = b.get(f"/patients/{patient_id}")
    request_id = page.headers["x-request-id"]
    caseload = b.get("/")
    with Session(web_engine) as session:
        rows = session.exec(select(AuditEvent).where(col(AuditEvent.request_id) == request_id)).all()
        listed = session.exec(
            select(AuditEvent).where(col(AuditEvent.request_id) == caseload.headers["x-request-id"])
        ).all()
    seen = {(r.action, r.record_kind) for r in rows}
    assert {
        ("read", "patients"),
        ("read", "plan-status"),
        ("list", "ketamine-administrations"),
        ("list", "cbt-sessions"),
        ("list", "questionnaire-responses"),
    } <= seen
    assert all(r.actor == "coord-kim" and r.tenant_id == tenant and r.outcome == "success" for r in rows)
    assert {r.patient_id for r in rows} == {patient_id}
    assert [(r.action, r.record_kind, r.patient_id) for r in listed] == [("list", "caseload", patient_id)]


def test_stylesheet_is_served_from_the_package(browser: Callable[..., Browser]) -> None:
    response = browser().get("/static/tandem.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_times_are_shown_in_the_hospital_zone(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    with unit_of_work(web_engine) as session:
        set_tenant_zone(session, tenant, "Pacific/Auckland")
    api = api_as(tenant)
    patient_id = at_risk_patient(api)
    given = api.create(
        "ketamine-administrations",
        administration_body(patient_id, started_at="2026-11-30T20:30:00+00:00", ended_at="2026-11-30T21:10:00+00:00"),
    )
    b = browser()
    b.sign_in(tenant, "clinician")
    text = b.get(f"/patients/{patient_id}").text
    assert given["id"] in text
    assert "01 Dec 2026 09:30 NZDT" in text  # 20:30 UTC the day before
    assert "30 Nov 2026 20:30 UTC" not in text
    assert "Times are shown in the hospital's time zone (Pacific/Auckland)" in text


def test_session_warnings_follow_the_tenants_protocol_thresholds(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], new_tenant: Callable[[], str]
) -> None:
    """A site whose protocol reviews from BP 160/100 and MOAA/S 3 sees such a session marked; a site on the
    built-in protocol (180/110, MOAA/S <= 2) does not: the page reads the enrolment's protocol."""
    from service.plan_status import IV_KETAMINE_CBT

    strict = IV_KETAMINE_CBT.model_dump(mode="json") | {"version": "site-strict"}
    strict["safety"] = strict["safety"] | {
        "bp_urgent_systolic": 160, "bp_urgent_diastolic": 100, "max_sedation_score": 3,
    }  # fmt: skip
    readings = {"vital_signs": [{"taken_at": at(2.1), "systolic_mmhg": 165, "diastolic_mmhg": 95}]}
    session = {"started_at": at(2), "ended_at": at(1.97), "sedation_score": 3, **readings}
    marked = {}
    for site in ("strict", "default"):
        tenant = new_tenant()
        api = api_as(tenant)
        if site == "strict":
            admin = api_as(tenant, "admin")
            created = admin.client.post("/api/v1/protocols", json=strict, headers=admin.headers)
            assert created.status_code == 201, created.text
        patient_id = enrolled_patient(api, family_name="Thresholds")
        api.create("ketamine-administrations", administration_body(patient_id, **session))
        b = browser()
        b.sign_in(tenant, "clinician")
        page = b.get(f"/patients/{patient_id}")
        assert page.status_code == 200, page.text
        attention = " ".join(re.findall(r'<p class="attention">(.*?)</p>', page.text))
        marked[site] = ("BP 165/95" in attention, "MOAA/S 3" in attention)
    assert marked == {"strict": (True, True), "default": (False, False)}


def test_a_policy_refusal_is_shown_on_the_patient_page(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    """DESIGN.md: a break-the-glass / policy refusal is never retried and is shown to coordinators."""
    from sqlalchemy import update

    from service.outbox import OutboxMessage

    api_as(tenant, "admin").create(
        "sync/targets", sync_target_body(name="Epic policy", push=["ketamine-administrations"])
    )
    api = api_as(tenant)
    refused, other = enrolled_patient(api, family_name="Refused"), enrolled_patient(api, family_name="Other")
    for patient_id in (refused, other):
        api.create("ketamine-administrations", administration_body(patient_id))
    error = {"message": "the EHR refused it: consent withheld", "status_code": 403, "policy_refusal": True}
    with Session(web_engine) as session:
        session.execute(
            update(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant).values(status="dead", last_error=error)
        )
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.tenant_id) == tenant, col(OutboxMessage.patient_id) == other)
            .values(last_error={"message": "timed out", "status_code": 504})
        )
        session.commit()
    b = browser()
    b.sign_in(tenant, "coordinator")
    page = b.get(f"/patients/{refused}")
    assert page.status_code == 200
    assert (
        "Refused by the EHR on policy" in page.text and "consent withheld" in page.text and "Epic policy" in page.text
    )
    assert "Refused by the EHR on policy" not in b.get(f"/patients/{other}").text  # a dead letter, not a refusal


def test_the_chart_runs_to_today_and_marks_the_questionnaires_that_never_came(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    api = api_as(tenant)
    patient_id = enrolled_patient(api, family_name="Gapwood", days_ago=70)
    api.create("questionnaire-responses", phq9(patient_id, 66))
    api.create(
        "ketamine-administrations",
        administration_body(patient_id, started_at=at(65), ended_at=at(64.97), vital_signs=[]),
    )
    api.create("cbt-sessions", cbt_body(patient_id, planned_start=at(63), actual_start=at(63), actual_end=at(62.96)))
    b = browser()
    b.sign_in(tenant, "coordinator")
    text = b.get(f"/patients/{patient_id}").text
    # Weekly during CBT: due 59 days ago and every week since — eight or nine slots, each marked.
    missed = text.count('class="missed-mark"')
    assert missed >= 8, missed
    assert f"{missed} measurements missed since" in text
    assert 'class="today-line"' in text


def test_the_patient_page_says_how_to_reach_the_patient(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    api = api_as(tenant)
    reachable = api.patient(
        telecom=[
            {"system": "phone", "value": "+1 608 555 0100", "use": "home", "rank": 2},
            {"system": "sms", "value": "+1 608 555 0143", "use": "mobile", "rank": 1},
            {"system": "email", "value": "dana@example.org"},
        ],
        addresses=[{"use": "home", "line": ["12 Lake St"], "city": "Madison"}],
        communication=[{"language": {"text": "Spanish"}, "preferred": True}],
        time_zone="America/Chicago",
    )
    unreachable = api.patient()
    b = browser()
    b.sign_in(tenant, "coordinator")
    text = b.get(f"/patients/{reachable}").text
    assert '<a href="tel:+16085550143">+1 608 555 0143</a> (mobile)<br><a href="tel:+16085550100">' in text
    assert '<a href="mailto:dana@example.org">dana@example.org</a>' in text
    assert "12 Lake St, Madison" in text
    assert "<dt>Prefers</dt><dd>text message</dd>" in text and "<dt>Language</dt><dd>Spanish</dd>" in text
    assert re.search(r"<dt>Patient's time</dt><dd>[A-Z][a-z]{2} [0-2][0-9]:[0-5][0-9] America/Chicago</dd>", text)
    empty = b.get(f"/patients/{unreachable}").text
    assert "<dt>Phone</dt><dd>none on record</dd>" in empty and "<dt>Prefers</dt><dd>not said</dd>" in empty
    assert "zone not said" in empty
