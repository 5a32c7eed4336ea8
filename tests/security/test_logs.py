"""No patient data in logs: every log record (all loggers, DEBUG) while real fixtures and synthetic patients go
through the JSON API and FHIR, including refusals, 404s and 500s, and through a live uvicorn server configured
as in production (`--no-access-log`).

The scan looks for the synthetic patients' names, MRNs and birth dates, and the fixtures' identifiers and
answer texts, as sent and URL-encoded.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from service.app import create_app
from service.record_store import store
from service.settings import Settings
from tests.builders import API, patient_body, questionnaire_body
from tests.fhir.support import about
from tests.security.support import new_tenant_id, role_headers
from tests.shared_fixtures import load_fixture

FHIR_JSON = "application/fhir+json"
FIXTURES = (
    "fhir/uscore7-QuestionnaireResponse-phq-9-example.json",
    "fhir/onc-bhp-QuestionnaireResponse-C-SSRS-example-1.json",
    "fhir/r4-MedicationAdministration-medadmin0305.json",
)
# Strings that also name codes, statuses or our own vocabulary: not patient data when they appear in a log.
GENERIC = {"completed", "final", "amended", "in-progress", "example", "unknown", "female", "male"}


def _fixture_markers(resource: Any) -> set[str]:
    """Identifiers, displays, names and free-text answers in a fixture: what must never reach a log."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("identifier", "name", "answer", "valueString", "display", "text", "family", "given"):
                    collect(v)
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)

    def collect(node: Any) -> None:
        if isinstance(node, str):
            if len(node) >= 6 and node.lower() not in GENERIC and not node.startswith(("http", "urn:", "<div")):
                found.add(node)
        elif isinstance(node, dict):
            for k, v in node.items():
                if k in ("value", "valueString", "display", "text", "family", "given") or isinstance(v, dict | list):
                    collect(v)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    walk(resource)
    return found


class Person:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.family = f"Qwertzuiopson{tag}"
        self.given = f"Ysolde{tag[:4]}"
        self.mrn = f"MRN-LOG-{tag.upper()}"
        self.birth_date = "1961-02-03"

    def markers(self) -> set[str]:
        return {self.family, self.given, self.mrn, self.birth_date}

    def body(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "family_name": self.family,
            "given_name": self.given,
            "birth_date": self.birth_date,
            "identifiers": [{"system": "urn:test:mrn", "value": self.mrn}],
        }
        return patient_body(**{**values, **overrides})

    def fhir(self) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:test:mrn", "value": self.mrn}],
            "name": [{"family": self.family, "given": [self.given]}],
            "gender": "female",
            "birthDate": self.birth_date,
        }


def _leaks(text: str, markers: set[str]) -> list[str]:
    shown = []
    for marker in sorted(markers):
        for form in {marker, quote(marker, safe=""), quote_plus(marker)}:
            if form in text:
                shown.append(marker)
                break
    return shown


# The test's own HTTP client logs the URLs it requests; that is the caller's log, not the service's.
CLIENT_LOGGERS = ("httpx", "httpcore")


def _captured(records: list[logging.LogRecord]) -> str:
    parts = []
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    for record in records:
        if record.name.startswith(CLIENT_LOGGERS):
            continue
        parts.append(formatter.format(record))
        parts.append(record.getMessage())
        parts.append(repr({k: v for k, v in vars(record).items() if k not in ("msg", "args", "exc_info")}))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def exercise(http: Any, settings: Settings, tenant_id: str, people: list[Person]) -> int:
    """Sends the people and the fixtures through every interface; returns how many requests were sent."""
    ehr = role_headers(settings, tenant_id, "ehr-system")
    fhir = {**ehr, "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    sent = 0

    def send(method: str, url: str, **kwargs: Any) -> httpx.Response:
        nonlocal sent
        sent += 1
        response: httpx.Response = http.request(method, url, **kwargs)
        return response

    json_person, fhir_person, refused_person, failing_person = people
    created = send("POST", f"{API}/patients", json=json_person.body(), headers=ehr)
    assert created.status_code == 201, created.text
    patient_id = created.json()["id"]
    send("GET", f"{API}/patients/{patient_id}", headers=ehr)
    send("GET", f"{API}/patients", params={"identifier": f"urn:test:mrn|{json_person.mrn}"}, headers=ehr)
    send("GET", f"{API}/patients", params={"identifier": f"urn:test:mrn|{refused_person.mrn}"}, headers=ehr)
    send("POST", f"{API}/questionnaire-responses", json=questionnaire_body(patient_id), headers=ehr)
    # refusals that carry patient data in the request
    send("POST", f"{API}/patients", json=refused_person.body(birth_date="1961-02-31"), headers=ehr)
    send("POST", f"{API}/patients", json=refused_person.body(sex="dragon"), headers=ehr)
    send("POST", f"{API}/patients", json={**refused_person.body(), "tenant_id": "x"}, headers=ehr)
    send("POST", f"{API}/patients", json=refused_person.body(), headers={"Authorization": "Bearer nope"})
    send("POST", f"{API}/patients", json=refused_person.body(), headers=role_headers(settings, tenant_id, "admin"))
    send("PATCH", f"{API}/patients/{patient_id}", json={"family_name": refused_person.family}, headers=ehr)  # 428
    send("GET", f"{API}/patients/{refused_person.mrn}", headers=ehr)  # 404 naming an MRN
    send("GET", f"/fhir/Patient/{refused_person.mrn}", headers=fhir)
    # FHIR
    stored = send("POST", "/fhir/Patient", json=fhir_person.fhir(), headers=fhir)
    assert stored.status_code == 201, stored.text
    fhir_patient = stored.json()["id"]
    send("GET", "/fhir/Patient", params={"identifier": f"urn:test:mrn|{fhir_person.mrn}"}, headers=fhir)
    send("GET", "/fhir/Patient", params={"name": fhir_person.family, "birthdate": fhir_person.birth_date}, headers=fhir)
    send("POST", "/fhir/Patient/_search", data={"identifier": f"urn:test:mrn|{fhir_person.mrn}"}, headers=ehr)
    send("POST", "/fhir/Patient", json={**refused_person.fhir(), "birthDate": "1961-13-45"}, headers=fhir)
    send("POST", "/fhir/Patient", json={**refused_person.fhir(), "gender": "dragon"}, headers=fhir)
    send(
        "POST",
        "/fhir/Patient",
        json=refused_person.fhir(),
        headers={**fhir, "If-None-Exist": f"identifier=urn:test:mrn|{refused_person.mrn}"},
    )
    for name in FIXTURES:
        resource = load_fixture(name)
        if resource["resourceType"] == "QuestionnaireResponse":
            send("POST", "/fhir/QuestionnaireResponse", json=about(resource, fhir_patient), headers=fhir)
            send("POST", f"{API}/questionnaire-responses", json=about(resource, patient_id), headers=fhir)
            send("POST", "/fhir/QuestionnaireResponse", json=resource, headers=fhir)  # unknown subject: refused
        else:
            send("POST", f"/fhir/{resource['resourceType']}", json=resource, headers=fhir)  # not ketamine: refused
            send("POST", f"/fhir/{resource['resourceType']}", json=about(resource, fhir_patient), headers=fhir)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Patient"}, "resource": refused_person.fhir()},
            {"request": {"method": "POST", "url": "Patient"}, "resource": {**refused_person.fhir(), "gender": "x"}},
        ],
    }
    send("POST", "/fhir", json=bundle, headers=fhir)
    del failing_person  # kept for the 500 test
    return sent


@pytest.fixture
def people() -> list[Person]:
    return [Person() for _ in range(4)]


def _markers(people: list[Person]) -> set[str]:
    markers = set().union(*(p.markers() for p in people))
    for name in FIXTURES:
        markers |= _fixture_markers(load_fixture(name))
    return markers


def _capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("tandem", "sqlalchemy", "fastapi", "starlette", "uvicorn", "uvicorn.error", "uvicorn.access"):
        caplog.set_level(logging.DEBUG, logger=name)


def _assert_clean(caplog: pytest.LogCaptureFixture, markers: set[str], label: str, sent: int) -> None:
    text = _captured(caplog.records)
    shown = _leaks(text, markers)
    service_records = sum(1 for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS))
    print(
        f"\n[logs] {label}: requests {sent}; service log records {service_records}; "
        f"markers searched {len(markers)}; found in logs: {len(shown)}"
    )
    lines = [line for line in text.splitlines() if any(m in line for m in shown)]
    assert not shown, f"patient data in the logs: {shown}\n" + "\n".join(lines)[:3000]


def test_no_patient_data_in_logs(
    client: TestClient, settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture, people: list[Person]
) -> None:
    _capture_everything(caplog)
    sent = exercise(client, settings, new_tenant_id(engine), people)
    _assert_clean(caplog, _markers(people), "in-process (API, FHIR, fixtures, refusals, 404s)", sent)


def test_no_patient_data_in_logs_when_the_database_fails(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    people: list[Person],
) -> None:
    _capture_everything(caplog)
    tenant_id = new_tenant_id(engine)
    ehr = role_headers(settings, tenant_id, "ehr-system")
    person = people[3]
    # A real failure where the backend has one: PostgreSQL refuses a NUL character (SQLite stores it).
    client.post(f"{API}/patients", json=person.body(given_name=f"{person.given}\u0000"), headers=ehr)

    # And a forced one on every backend, shaped like a database error (SQLAlchemy puts the parameters in str()).
    def failing_read(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError(
            "SELECT patients.family_name FROM patients WHERE patients.id = :id",
            {"family_name": person.family, "mrn": person.mrn},
            Exception("simulated failure"),
        )

    monkeypatch.setattr(store, "read_record", failing_read)
    forced = client.get(f"{API}/patients/{uuid.uuid4()}", headers=ehr)
    assert forced.status_code == 500
    assert person.family not in forced.text and person.mrn not in forced.text  # never in the answer
    _assert_clean(caplog, person.markers(), "forced 500s", 2)


@pytest.fixture
def live_base_url(settings: Settings) -> Iterator[str]:
    """uvicorn as the service runs it (`tandem serve`, the Dockerfile): access log off; its own logs at DEBUG,
    propagated to the root logger (log_config=None) so caplog sees them."""
    app = create_app(settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="debug", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_no_patient_data_in_a_live_servers_logs(
    live_base_url: str, settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture, people: list[Person]
) -> None:
    _capture_everything(caplog)
    with httpx.Client(base_url=live_base_url, timeout=30) as http:
        sent = exercise(http, settings, new_tenant_id(engine), people)
    # uvicorn's access log writes the raw path and query (MRNs in ?identifier=, ids in paths). Production turns
    # it off (Dockerfile `--no-access-log`, `tandem serve` access_log=False); pytest attaches its capture handler
    # to every logger, which switches uvicorn's access lines back on here, so they are set aside and counted.
    access = [r for r in caplog.records if r.name == "uvicorn.access"]
    raw_query_lines = sum(1 for r in access if _leaks(r.getMessage(), _markers(people)))
    caplog.records[:] = [r for r in caplog.records if r.name != "uvicorn.access"]
    print(f"\n[logs] uvicorn access lines set aside: {len(access)} ({raw_query_lines} would show an MRN or name)")
    _assert_clean(caplog, _markers(people), "live uvicorn server", sent)


def test_the_production_entry_points_keep_uvicorns_access_log_off() -> None:
    from tests.conftest import project_root

    root = project_root()
    assert "--no-access-log" in (root / "Dockerfile").read_text(encoding="utf-8")
    assert "access_log=False" in (root / "service" / "cli.py").read_text(encoding="utf-8")
