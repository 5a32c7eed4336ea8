"""EHR targets managed on the admin sync page (issue #24, part 4): add, edit, disable and enable, refusals in words
beside their fields, the connection test's failures in words, backfill (idempotent), replay all, message pages
with patients by name. Admins only; the CSRF and role refusals of every form are tests/web/test_form_refusals.py.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.app import create_app
from service.outbox import OutboxMessage
from service.records.audit import AuditEvent
from service.records.sync_target import SyncTarget
from service.settings import Settings
from service.sync.processing import Processor
from service.sync.worker import run_worker
from service.web import install_web
from tests.builders import ApiDriver, administration_body, sync_target_body
from tests.conftest import make_settings
from tests.ehr_peer.sekmet_server import free_port
from tests.live_server import serve
from tests.web.conftest import Browser, enrolled_patient, unique

LOOPBACK = ["127.0.0.1"]


@pytest.fixture(scope="module")
def loopback_settings(database_url: str) -> Settings:
    """EHRs on loopback over plain http may be targets (the local peers of these tests); a SMART signing key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return make_settings(
        database_url,
        sync_allowed_hosts=LOOPBACK,
        sync_require_https=False,
        smart_private_keys={"k1": pem.decode()},
    )


@pytest.fixture(scope="module")
def loopback_app(loopback_settings: Settings) -> FastAPI:
    app = create_app(loopback_settings)
    install_web(app)
    return app


@pytest.fixture
def admin(loopback_app: FastAPI, loopback_settings: Settings, tenant: str) -> Browser:
    b = Browser(TestClient(loopback_app, raise_server_exceptions=True), loopback_settings)
    b.sign_in(tenant, "admin")
    return b


def _api(app: FastAPI, settings: Settings, tenant: str, role: str = "ehr-system") -> ApiDriver:
    from service.auth.tokens import mint_dev_token

    token = mint_dev_token(settings, tenant=tenant, role=role)  # type: ignore[arg-type]
    return ApiDriver(TestClient(app), {"Authorization": f"Bearer {token}"})


def _targets(engine: Engine, tenant: str) -> list[SyncTarget]:
    with Session(engine) as session:
        return list(session.exec(select(SyncTarget).where(col(SyncTarget.tenant_id) == tenant)))


def _rows(engine: Engine, tenant: str, target_id: str | None = None) -> list[OutboxMessage]:
    with Session(engine) as session:
        query = select(OutboxMessage).where(col(OutboxMessage.tenant_id) == tenant)
        if target_id is not None:
            query = query.where(col(OutboxMessage.target_id) == target_id)
        return list(session.exec(query.order_by(col(OutboxMessage.id))))


def _audit(engine: Engine, tenant: str, action: str, kind: str = "sync/targets") -> list[AuditEvent]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEvent).where(
                    col(AuditEvent.tenant_id) == tenant,
                    col(AuditEvent.action) == action,
                    col(AuditEvent.record_kind) == kind,
                )
            )
        )


def _form(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "name": unique("Epic "),
        "base_url": "https://93.184.216.34/fhir",
        "auth_kind": "none",
        "push": ["patients", "ketamine-administrations"],
        "requests_per_second": "5",
        "batch_size": "20",
        "enabled": "on",
        **overrides,
    }


def _target_id(location: str) -> str:
    found = re.match(r"^/sync/targets/([0-9a-f-]{36})\?saved=1$", location)
    assert found, location
    return found.group(1)


def test_an_admin_adds_edits_disables_and_enables_a_target(admin: Browser, tenant: str, loopback_app: FastAPI) -> None:
    engine: Engine = loopback_app.state.engine
    name = unique("Epic ")
    created = admin.client.post(
        "/sync/targets",
        data={**_form(name=name), "csrf_token": (admin.get("/sync/targets/new"), admin.csrf())[1]},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    target_id = _target_id(created.headers["location"])
    page = admin.get(f"/sync/targets/{target_id}")
    assert page.status_code == 200 and name in page.text and "Saved." not in page.text
    assert "patients, ketamine-administrations" in page.text
    [stored] = _targets(engine, tenant)
    assert (stored.name, stored.enabled, stored.push) == (name, True, ["patients", "ketamine-administrations"])
    assert [a.record_id for a in _audit(engine, tenant, "create")] == [target_id]

    edit = admin.get(f"/sync/targets/{target_id}/edit")
    assert 'name="version" value="1"' in edit.text and f'value="{name}"' in edit.text
    changed = admin.client.post(
        f"/sync/targets/{target_id}",
        data={**_form(name=f"{name} prod", push=["patients"]), "version": "1", "csrf_token": admin.csrf()},
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text
    [stored] = _targets(engine, tenant)
    assert (stored.name, stored.push, stored.version) == (f"{name} prod", ["patients"], 2)

    # A form filled before that change is refused, in words, and changes nothing.
    stale = admin.client.post(
        f"/sync/targets/{target_id}",
        data={**_form(name="stale"), "version": "1", "csrf_token": admin.csrf()},
        follow_redirects=False,
    )
    assert stale.status_code == 412 and "changed since this form was opened" in stale.text
    assert _targets(engine, tenant)[0].name == f"{name} prod"

    admin.get(f"/sync/targets/{target_id}")
    disabled = admin.post(f"/sync/targets/{target_id}/enabled", {"enabled": "false"}, csrf=admin.csrf())
    assert disabled.status_code == 303
    assert _targets(engine, tenant)[0].enabled is False
    page = admin.get(f"/sync/targets/{target_id}")
    assert "(disabled)" in page.text and ">Enable</button>" in page.text
    admin.post(f"/sync/targets/{target_id}/enabled", {"enabled": "true"}, csrf=admin.csrf())
    assert _targets(engine, tenant)[0].enabled is True
    # The edit and the two switches; the stale form, refused, is audited as a failed attempt.
    assert sorted(a.outcome for a in _audit(engine, tenant, "update")) == ["failure"] + ["success"] * 3
    listing = admin.get("/sync")
    assert f'href="/sync/targets/{target_id}"' in listing.text and 'href="/sync/targets/new"' in listing.text


def test_enabling_a_target_again_queues_what_was_set_aside_while_it_was_disabled(
    admin: Browser, tenant: str, loopback_app: FastAPI, loopback_settings: Settings
) -> None:
    engine: Engine = loopback_app.state.engine
    target_id = _loopback_target(admin, "https://93.184.216.34/fhir", push=["patients"])
    api = _api(loopback_app, loopback_settings, tenant)
    api.patient(family_name="Waiting")
    admin.get(f"/sync/targets/{target_id}")
    admin.post(f"/sync/targets/{target_id}/enabled", {"enabled": "false"}, csrf=admin.csrf())
    # A live worker's turn: the disabled target's row is set aside (nothing is sent to the EHR).
    stats = run_worker(
        engine,
        loopback_settings,
        worker_id=unique("w-"),
        stop_event=threading.Event(),
        once=True,
        tenant_id=tenant,
        processor=Processor(engine, loopback_settings, "w"),
    )
    [row] = _rows(engine, tenant, target_id)
    assert (stats.not_supported, row.status) == (1, "not_supported")
    api.patient(family_name="Meanwhile")  # written while disabled: not queued
    assert len(_rows(engine, tenant, target_id)) == 1

    admin.get(f"/sync/targets/{target_id}")
    enabled = admin.post(f"/sync/targets/{target_id}/enabled", {"enabled": "true"}, csrf=admin.csrf())
    notice = admin.get(enabled.headers["location"]).text
    assert "1 message(s) set aside while the target was disabled are queued again." in notice
    assert [(r.status, r.attempts) for r in _rows(engine, tenant, target_id)] == [("pending", 0)]
    backfilled = admin.post(f"/sync/targets/{target_id}/backfill", {}, csrf=admin.csrf())
    assert "Backfill: 1 record(s) queued; 1 already queued" in admin.get(backfilled.headers["location"]).text
    refused = admin.post(f"/sync/targets/{target_id}/enabled", {"enabled": "maybe"}, csrf=admin.csrf())
    assert refused.status_code == 422 and "say true" in refused.text


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"base_url": "ftp://ehr.example/fhir"}, "base_url", "http"),
        ({"base_url": "https://10.1.2.3/fhir"}, "base_url", "10.1.2.3"),
        ({"base_url": "not a url"}, "base_url", ""),
        ({"requests_per_second": "fast"}, "requests_per_second", "number"),
        ({"requests_per_second": "1000"}, "requests_per_second", "100"),
        ({"auth_kind": "smart-backend", "token_url": "https://93.184.216.34/token"}, "client_id", "required"),
        ({"auth_kind": "bearer", "token": "short"}, "token", "8"),
    ],
)
def test_a_refused_target_is_said_in_words_beside_its_field(
    admin: Browser,
    tenant: str,
    loopback_app: FastAPI,
    overrides: dict[str, str],
    field: str,
    words: str,
) -> None:
    engine: Engine = loopback_app.state.engine
    admin.get("/sync/targets/new")
    refused = admin.client.post(
        "/sync/targets", data={**_form(**overrides), "csrf_token": admin.csrf()}, follow_redirects=False
    )
    assert refused.status_code == 422, refused.text
    assert "Nothing was saved" in refused.text
    shown = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', refused.text)
    assert shown, refused.text
    assert words.lower() in shown.group(1).lower()
    assert f'aria-describedby="{field}-error"' in refused.text
    assert 'name="token" value=""' in refused.text  # a refused token is not sent back
    if field != "token":
        assert _targets(engine, tenant) == []
    else:  # the target is created in the same unit of work as its token: refused together
        assert _targets(engine, tenant) == []
    assert [a.outcome for a in _audit(engine, tenant, "create")] == ["failure"]


def test_a_duplicate_name_is_refused_beside_the_name(admin: Browser, tenant: str, loopback_app: FastAPI) -> None:
    name = unique("Cerner ")
    admin.get("/sync/targets/new")
    admin.client.post("/sync/targets", data={**_form(name=name), "csrf_token": admin.csrf()})
    admin.get("/sync/targets/new")
    again = admin.client.post(
        "/sync/targets", data={**_form(name=name), "csrf_token": admin.csrf()}, follow_redirects=False
    )
    assert again.status_code == 409 and "Another target of this hospital has this name." in again.text
    assert len(_targets(loopback_app.state.engine, tenant)) == 1


def test_a_bearer_token_posted_with_the_form_is_sealed_and_never_shown(
    admin: Browser, tenant: str, loopback_app: FastAPI
) -> None:
    admin.get("/sync/targets/new")
    created = admin.client.post(
        "/sync/targets",
        data={**_form(auth_kind="bearer", token="tok-0123456789-secret"), "csrf_token": admin.csrf()},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    [stored] = _targets(loopback_app.state.engine, tenant)
    assert stored.credential and "tok-0123456789-secret" not in stored.credential
    page = admin.get(created.headers["location"])
    assert "token written for https://93.184.216.34" in page.text
    assert "tok-0123456789-secret" not in admin.get(f"/sync/targets/{stored.id}/edit").text


@pytest.mark.parametrize("role", ["coordinator", "clinician"])
def test_the_target_pages_are_for_admins_only(
    loopback_app: FastAPI, loopback_settings: Settings, tenant: str, role: str
) -> None:
    target = _api(loopback_app, loopback_settings, tenant, "admin").create("sync/targets", sync_target_body())
    b = Browser(TestClient(loopback_app), loopback_settings)
    b.sign_in(tenant, role)  # type: ignore[arg-type]
    for path in ("/sync/targets/new", f"/sync/targets/{target['id']}", f"/sync/targets/{target['id']}/edit"):
        assert b.get(path).status_code == 403, path
    for path in ("/sync/targets", f"/sync/targets/{target['id']}/backfill", f"/sync/targets/{target['id']}/replay"):
        assert b.post(path, _form(), csrf=b.csrf()).status_code == 403, path  # type: ignore[arg-type]
    assert len(_targets(loopback_app.state.engine, tenant)) == 1
    assert _rows(loopback_app.state.engine, tenant) == []


def test_another_hospitals_target_and_messages_read_as_missing(
    admin: Browser, loopback_app: FastAPI, loopback_settings: Settings, new_tenant: Callable[[], str]
) -> None:
    other = new_tenant()
    theirs = _api(loopback_app, loopback_settings, other, "admin").create(
        "sync/targets", sync_target_body(push=["patients"])
    )
    _api(loopback_app, loopback_settings, other).patient()
    [row] = _rows(loopback_app.state.engine, other)
    assert admin.get(f"/sync/targets/{theirs['id']}").status_code == 404
    assert admin.get(f"/sync/messages/{row.id}").status_code == 404
    admin.get("/sync")
    assert admin.post(f"/sync/targets/{theirs['id']}/backfill", {}, csrf=admin.csrf()).status_code == 404
    assert admin.post(f"/sync/targets/{theirs['id']}/connection-test", {}, csrf=admin.csrf()).status_code == 404


# ---- test connection: failures in words -------------------------------------------------------------------------


def _loopback_target(admin: Browser, base_url: str, **form: str | list[str]) -> str:
    admin.get("/sync/targets/new")
    created = admin.client.post(
        "/sync/targets", data={**_form(base_url=base_url, **form), "csrf_token": admin.csrf()}, follow_redirects=False
    )
    assert created.status_code == 303, created.text
    return _target_id(created.headers["location"])


def _test_connection(admin: Browser, target_id: str) -> str:
    admin.get(f"/sync/targets/{target_id}")
    answer = admin.post(f"/sync/targets/{target_id}/connection-test", {}, csrf=admin.csrf())
    assert answer.status_code == 200, answer.text
    report = re.search(r'<section class="panel" aria-labelledby="connection-heading".*?</section>', answer.text, re.S)
    assert report, answer.text
    return re.sub(r"\s+", " ", report.group(0).replace("&#39;", "'"))


def test_an_unreachable_host_is_said_refused(admin: Browser, tenant: str, loopback_app: FastAPI) -> None:
    port = free_port()  # nothing listens there
    target_id = _loopback_target(admin, f"http://127.0.0.1:{port}/fhir")
    report = _test_connection(admin, target_id)
    assert "it failed" in report
    assert f"127.0.0.1:{port} refused the connection" in report
    assert [a.outcome for a in _audit(loopback_app.state.engine, tenant, "read") if a.record_id == target_id]


def _peer_app() -> FastAPI:
    """A server that is not a FHIR server at /html, and one that fails with an OperationOutcome at /broken."""
    peer = FastAPI()

    @peer.get("/html/metadata")
    def html() -> HTMLResponse:
        return HTMLResponse("<html><body>Welcome to the intranet</body></html>")

    @peer.get("/patient/metadata")
    def patient() -> JSONResponse:
        return JSONResponse({"resourceType": "Patient", "id": "x"})

    @peer.get("/broken/metadata")
    def broken() -> JSONResponse:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "transient", "diagnostics": "Database maintenance until 04:00"}],
        }
        return JSONResponse(outcome, status_code=503)

    @peer.post("/token")
    def token() -> JSONResponse:
        return JSONResponse({"error": "invalid_client", "error_description": "unknown client"}, status_code=401)

    @peer.get("/moved/metadata")
    def moved() -> JSONResponse:
        return JSONResponse({}, status_code=301, headers={"Location": "https://elsewhere.example/fhir/metadata"})

    return peer


@pytest.fixture(scope="module")
def peer() -> Iterator[str]:
    with serve(_peer_app()) as base_url:
        yield base_url


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("html", "with text/html, not a FHIR CapabilityStatement: is the base URL the FHIR base"),
        ("patient", "with a Patient, not a FHIR CapabilityStatement"),
        ("broken", "answered HTTP 503 Service Unavailable: Database maintenance until 04:00"),
        ("moved", "answered HTTP 301 Moved Permanently (a redirect to https://elsewhere.example/fhir/metadata"),
    ],
)
def test_a_server_that_is_not_a_working_fhir_server_is_said_so(
    admin: Browser, peer: str, path: str, words: str
) -> None:
    target_id = _loopback_target(admin, f"{peer}/{path}")
    report = _test_connection(admin, target_id)
    assert "it failed" in report and words in report, report
    assert "capability-decisions" not in report


def test_a_smart_token_endpoint_refusal_is_said_with_its_words(admin: Browser, peer: str) -> None:
    target_id = _loopback_target(
        admin, f"{peer}/broken", auth_kind="smart-backend", client_id="tandem", token_url=f"{peer}/token", key_id="k1"
    )
    report = _test_connection(admin, target_id)
    expected = "<strong>Token:</strong> failed. no token: token endpoint answered 401: invalid_client: unknown client"
    assert expected in report, report


# ---- backfill, replay all, messages -----------------------------------------------------------------------------


def _history(app: FastAPI, settings: Settings, tenant: str, patients: int = 2) -> list[str]:
    """Patients with an enrolment and a ketamine session each, written before any target exists."""
    api = _api(app, settings, tenant)
    ids = []
    for n in range(patients):
        patient_id = enrolled_patient(api, family_name=f"Backfill{n}")
        api.create("ketamine-administrations", administration_body(patient_id))
        ids.append(patient_id)
    return ids


def test_backfill_queues_every_record_once_patients_first(
    admin: Browser, tenant: str, loopback_app: FastAPI, loopback_settings: Settings
) -> None:
    engine: Engine = loopback_app.state.engine
    patients = _history(loopback_app, loopback_settings, tenant)
    target_id = _loopback_target(
        admin, "https://93.184.216.34/fhir", push=["patients", "enrollments", "ketamine-administrations"]
    )
    assert _rows(engine, tenant, target_id) == []  # registered after the records: nothing was queued for it
    page = admin.get(f"/sync/targets/{target_id}")
    first = admin.post(f"/sync/targets/{target_id}/backfill", {}, csrf=admin.csrf())
    assert first.status_code == 303
    shown = admin.get(first.headers["location"]).text
    assert "Backfill: 6 record(s) queued; 0 already queued" in shown
    assert "<strong>6</strong> queued, <strong>0</strong> delivered" in shown
    rows = _rows(engine, tenant, target_id)
    assert sorted((r.record_kind, r.patient_id) for r in rows if r.record_kind == "patients") == sorted(
        ("patients", p) for p in patients
    )
    for patient_id in patients:  # each patient's rows: the patient, then the enrolment, then the session
        kinds = [r.record_kind for r in rows if r.patient_id == patient_id]
        assert kinds == ["patients", "enrollments", "ketamine-administrations"]
    assert page.status_code == 200

    second = admin.post(f"/sync/targets/{target_id}/backfill", {}, csrf=admin.csrf())
    assert "Backfill: 0 record(s) queued; 6 already queued" in admin.get(second.headers["location"]).text
    assert len(_rows(engine, tenant, target_id)) == 6
    assert [a.outcome for a in _audit(engine, tenant, "update") if a.record_id == target_id] == ["success"] * 2


def test_backfill_does_not_send_an_ehr_what_was_pulled_from_it(
    admin: Browser, tenant: str, loopback_app: FastAPI, loopback_settings: Settings
) -> None:
    base_url = "https://93.184.216.34/fhir"
    api = _api(loopback_app, loopback_settings, tenant)
    ours = api.patient(family_name="Ours")
    # As a pull from that EHR stores what it took in: the EHR's base URL and its id as the source.
    theirs = api.patient(family_name="Theirs", source={"system": base_url, "value": "Patient/e-77"})
    target_id = _loopback_target(admin, base_url, push=["patients"])
    admin.get(f"/sync/targets/{target_id}")
    done = admin.post(f"/sync/targets/{target_id}/backfill", {}, csrf=admin.csrf())
    assert "Backfill: 1 record(s) queued; 1 already queued, sent or held" in admin.get(done.headers["location"]).text
    assert [r.record_id for r in _rows(loopback_app.state.engine, tenant, target_id)] == [ours]
    assert theirs != ours


def test_backfill_of_a_disabled_target_is_refused_in_words(
    admin: Browser, tenant: str, loopback_app: FastAPI, loopback_settings: Settings
) -> None:
    _history(loopback_app, loopback_settings, tenant, patients=1)
    target_id = _loopback_target(admin, "https://93.184.216.34/fhir", enabled="")
    admin.get(f"/sync/targets/{target_id}")
    refused = admin.post(f"/sync/targets/{target_id}/backfill", {}, csrf=admin.csrf())
    assert refused.status_code == 422
    assert "Backfill refused: the target is disabled: enable it first" in refused.text
    assert _rows(loopback_app.state.engine, tenant, target_id) == []


def _fail_rows(engine: Engine, rows: list[OutboxMessage], status: str) -> None:
    with Session(engine) as session:
        for row in rows:
            stored = session.get(OutboxMessage, row.id)
            assert stored is not None
            stored.status, stored.attempts, stored.last_status_code = status, 3, 422
            stored.next_attempt_at = datetime.now(UTC) + timedelta(hours=2)
            stored.last_error = {
                "message": "Patient create: HTTP 422",
                "status_code": 422,
                "operation_outcome": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"code": "invalid", "diagnostics": "Patient.birthDate: not a date"}],
                },
            }
            session.add(stored)
        session.commit()


def test_errors_in_words_with_the_next_try_names_linked_and_replay_all(
    admin: Browser, tenant: str, loopback_app: FastAPI, loopback_settings: Settings
) -> None:
    engine: Engine = loopback_app.state.engine
    patients = _history(loopback_app, loopback_settings, tenant, patients=2)
    target_id = _loopback_target(admin, "https://93.184.216.34/fhir", push=["patients"])
    other_id = _loopback_target(admin, "https://93.184.216.35/fhir", push=["patients"])
    for target in (target_id, other_id):
        admin.get(f"/sync/targets/{target}")
        admin.post(f"/sync/targets/{target}/backfill", {}, csrf=admin.csrf())
    first, second = _rows(engine, tenant, target_id)
    _fail_rows(engine, [first], "dead")
    _fail_rows(engine, [second], "failed")
    _fail_rows(engine, _rows(engine, tenant, other_id), "dead")

    sync = admin.get("/sync").text
    assert f'action="/sync/targets/{target_id}/replay"' in sync and f'action="/sync/targets/{other_id}/replay"' in sync
    assert (
        "93.184.216.34:443 answered HTTP 422 Unprocessable Entity. The EHR said: Patient.birthDate: not a date" in sync
    )
    # Named, not linked: the sync pages are an administrator's, and patient pages are the care team's (403).
    assert 'administrators see the name only">Backfill' in sync and 'href="/patients/' not in sync
    assert f'href="/sync/messages/{first.id}"' in sync
    assert "next try" in sync
    detail = admin.get(f"/sync/messages/{second.id}")
    assert detail.status_code == 200
    assert 'administrators see the name only">Backfill' in detail.text and 'href="/patients/' not in detail.text
    assert "Patient.birthDate: not a date" in detail.text and "Next try" in detail.text
    assert {second.patient_id} <= {a.patient_id for a in _audit(engine, tenant, "read", "sync-outbox")}

    admin.get(f"/sync/targets/{target_id}")
    replayed = admin.post(f"/sync/targets/{target_id}/replay", {}, csrf=admin.csrf())
    assert "2 dead or failed message(s) queued again." in admin.get(replayed.headers["location"]).text
    assert {(r.status, r.attempts) for r in _rows(engine, tenant, target_id)} == {("pending", 0)}
    assert {r.status for r in _rows(engine, tenant, other_id)} == {"dead"}  # another target's rows stay
    assert set(patients) == {r.patient_id for r in _rows(engine, tenant, target_id)}


def test_a_restricted_patients_name_is_not_shown_to_the_admin(
    admin: Browser, tenant: str, loopback_app: FastAPI, loopback_settings: Settings
) -> None:
    engine: Engine = loopback_app.state.engine
    target_id = _loopback_target(admin, "https://93.184.216.34/fhir", push=["patients"])
    api = _api(loopback_app, loopback_settings, tenant)
    hidden = api.patient(family_name="Secretname", restricted=True)
    [row] = _rows(engine, tenant, target_id)
    _fail_rows(engine, [row], "dead")
    page = admin.get("/sync").text
    assert "Secretname" not in page and "(restricted patient)" in page
    assert "Secretname" not in admin.get(f"/sync/messages/{row.id}").text
    assert hidden == row.patient_id


def test_the_backfill_command_shows_progress_and_a_summary_and_queues_nothing_twice(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tenant: str,
    loopback_app: FastAPI,
    loopback_settings: Settings,
) -> None:
    from typer.testing import CliRunner

    from service.cli import app as cli
    from service.settings import get_settings

    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()
    _history(loopback_app, loopback_settings, tenant, patients=2)
    target = _api(loopback_app, loopback_settings, tenant, "admin").create(
        "sync/targets", sync_target_body(name="Oracle", push=["patients", "ketamine-administrations"])
    )
    first = CliRunner().invoke(cli, ["sync", "backfill", target["id"]], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "Oracle: 4 record(s) queued (patients 2, ketamine-administrations 2); 0 already queued" in first.output
    assert "patients" in first.output and "2/2" in first.output  # the progress bar's last state
    again = CliRunner().invoke(cli, ["sync", "backfill", target["id"]], env={"COLUMNS": "200"})
    assert "Oracle: 0 record(s) queued; 4 already queued, sent or held by the EHR" in again.output
    assert len(_rows(loopback_app.state.engine, tenant, target["id"])) == 4
    missing = CliRunner().invoke(cli, ["sync", "backfill", "no-such-target"])
    assert missing.exit_code == 2 and "no EHR sync target no-such-target" in missing.output
    get_settings.cache_clear()
