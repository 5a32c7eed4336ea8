"""Each surface answers every error in its own format: OperationOutcome on /fhir (with the error's issue code),
problem+json on /api, an HTML page on the coordinator pages — also for what is refused before routing (an unknown
path or method, a body over the cap, the rate limit) and for a database that cannot be reached."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.builders import API, patient_body
from tests.conftest import make_settings
from tests.fhir.support import patient_resource

Auth = Callable[..., dict[str, str]]
FHIR_JSON = "application/fhir+json"
PROBLEM_JSON = "application/problem+json"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


def _outcome(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert [issue["code"] for issue in body["issue"]][:1] == [code], body
    assert body["issue"][0]["diagnostics"]


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body = response.json()
    assert body["status"] == status and body["detail"], body


def _page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers
    assert "<html" in response.text.lower()
    assert response.headers["content-security-policy"]  # the pages' own headers, on errors too


@pytest.fixture
def tight(settings_factory: Callable[..., TestClient]) -> TestClient:
    """An app with a small body cap and a rate of 3 requests a minute per client."""
    return settings_factory(max_body_bytes=2_000, rate_limit_per_minute=3)


@pytest.fixture
def no_database(tmp_path: Path, settings: Settings) -> Iterator[TestClient]:
    """An app whose database cannot be opened (a directory that does not exist), with the suite's secrets."""
    app = create_app(make_settings(f"sqlite:///{tmp_path}/missing/tandem.db"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


# ---- /fhir: OperationOutcome, with the error's issue code ------------------------------------------------------


def test_fhir_refusals_are_operation_outcomes_with_their_issue_code(
    client: TestClient, tenant: str, auth: Auth
) -> None:
    ehr = auth(tenant, "ehr-system")
    missing_token = client.get("/fhir/Patient")
    _outcome(missing_token, 401, "login")
    assert missing_token.headers["www-authenticate"].startswith("Bearer")
    _outcome(client.get("/fhir/AuditEvent", headers=auth(tenant, "coordinator")), 403, "forbidden")
    _outcome(client.get("/fhir/Patient/a/b/c/d", headers=ehr), 404, "not-found")  # no route
    _outcome(client.get("/fhir", headers=ehr), 405, "not-supported")  # POST only: a Bundle
    _outcome(client.get("/fhir/Patient/no-such-id", headers=ehr), 404, "not-found")
    not_allowed = client.patch("/fhir/Patient/some-id", headers=ehr)
    _outcome(not_allowed, 405, "not-supported")
    assert not_allowed.headers["allow"] == "GET, PUT, DELETE"
    created = client.post("/fhir/Patient", json=patient_resource(), headers=ehr)
    assert created.status_code == 201, created.text
    patient = created.json()
    stale = client.put(f"/fhir/Patient/{patient['id']}", json=patient, headers={**ehr, "If-Match": 'W/"7"'})
    _outcome(stale, 412, "conflict")
    # Another record of the sender's (its own identifier) with this patient's MRN: a second person, refused.
    twin = patient_resource(identifier=[*patient["identifier"], {"system": "urn:oid:1.2.3.9", "value": "E-other"}])
    _outcome(client.post("/fhir/Patient", json=twin, headers=ehr), 409, "conflict")
    wrong_type = client.post("/fhir/Patient", content=b"name=Ada", headers={**ehr, "Content-Type": "text/plain"})
    _outcome(wrong_type, 415, "not-supported")
    _outcome(client.get("/fhir/Patient", headers={**ehr, "Accept": "text/csv"}), 406, "not-supported")
    _outcome(
        client.post("/fhir/Patient", content=b"{not json", headers={**ehr, "Content-Type": FHIR_JSON}), 422, "invalid"
    )
    bad_search = client.get("/fhir/Patient", params={"_count": "many"}, headers=ehr)
    assert bad_search.status_code == 400 and bad_search.json()["resourceType"] == "OperationOutcome"


def test_fhir_refusals_before_routing_are_operation_outcomes(tight: TestClient, tenant: str, auth: Auth) -> None:
    ehr = auth(tenant, "ehr-system")
    too_big = tight.post("/fhir/Patient", json=patient_resource(text={"div": "x" * 5_000}), headers=ehr)
    _outcome(too_big, 413, "too-costly")
    nul = tight.get("/fhir/Patient", params={"name": "a\x00b"}, headers=ehr)
    _outcome(nul, 400, "invalid")
    for _ in range(3):
        tight.get("/fhir/metadata", headers=ehr)
    limited = tight.get("/fhir/Patient", headers=ehr)
    _outcome(limited, 429, "throttled")
    assert limited.headers["retry-after"].isdigit()


def test_fhir_database_unavailable_is_a_transient_operation_outcome(no_database: TestClient, auth: Auth) -> None:
    unavailable = no_database.get("/fhir/Patient", headers=auth("any-tenant", "ehr-system"))
    _outcome(unavailable, 503, "transient")
    assert unavailable.headers["retry-after"].isdigit()


# ---- /api: problem+json -------------------------------------------------------------------------------------


def test_api_refusals_are_problem_json(client: TestClient, tenant: str, auth: Auth) -> None:
    clinician = auth(tenant)
    _problem(client.get(f"{API}/patients"), 401)
    _problem(client.get(f"{API}/sync/targets", headers=auth(tenant, "coordinator")), 403)
    _problem(client.get(f"{API}/no-such-collection", headers=clinician), 404)
    _problem(client.get(f"{API}/patients/no-such-id", headers=clinician), 404)
    not_allowed = client.delete(f"{API}/patients", headers=clinician)
    _problem(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET, POST"
    body = patient_body()
    created = client.post(f"{API}/patients", json=body, headers=clinician)
    assert created.status_code == 201, created.text
    _problem(client.post(f"{API}/patients", json=patient_body(identifiers=body["identifiers"]), headers=clinician), 409)
    stale = client.patch(
        f"{API}/patients/{created.json()['id']}", json={"given_name": "Kim"}, headers={**clinician, "If-Match": 'W/"9"'}
    )
    _problem(stale, 412)
    _problem(client.post(f"{API}/patients", json={"family_name": 7}, headers=clinician), 422)
    unreadable = client.post(
        f"{API}/patients", content=b"{not json", headers={**clinician, "Content-Type": "application/json"}
    )
    assert unreadable.status_code in (400, 422) and unreadable.headers["content-type"] == PROBLEM_JSON


def test_api_refusals_before_routing_are_problem_json(tight: TestClient, tenant: str, auth: Auth) -> None:
    clinician = auth(tenant)
    _problem(tight.post(f"{API}/patients", json=patient_body(notes="x" * 5_000), headers=clinician), 413)
    _problem(tight.get(f"{API}/patients", params={"family_name": "a\x00b"}, headers=clinician), 400)
    for _ in range(3):
        tight.get(f"{API}/patients", headers=clinician)
    _problem(tight.get(f"{API}/patients", headers=clinician), 429)


def test_api_database_unavailable_is_problem_json(no_database: TestClient, auth: Auth) -> None:
    _problem(no_database.get(f"{API}/patients", headers=auth("any-tenant")), 503)


# ---- the pages: HTML ----------------------------------------------------------------------------------------


def _signed_in(client: TestClient, tenant: str, settings: Settings, role: str = "coordinator") -> None:
    from service.auth.tokens import mint_dev_token

    form = client.get("/sign-in")
    csrf = CSRF_FIELD.search(form.text)
    assert csrf
    token = mint_dev_token(settings, tenant=tenant, role=role)  # type: ignore[arg-type]
    answer = client.post(
        "/sign-in", data={"token": token, "next": "/", "csrf_token": csrf.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def test_page_refusals_are_html(client: TestClient, tenant: str, settings: Settings) -> None:
    browser = TestClient(client.app, raise_server_exceptions=False)
    anonymous = browser.get("/", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/sign-in")
    _signed_in(browser, tenant, settings)
    _page(browser.get("/sync"), 403)  # an admin page
    _page(browser.get("/patients/no-such-id"), 404)
    _page(browser.put("/patients/no-such-id"), 405)
    _page(browser.get("/patients/no-such-id", params={"acknowledgement": "x" * 65}), 400)
    _page(browser.post("/patients/no-such-id/acknowledgements", data={"csrf_token": "forged"}), 403)


def test_page_refusals_before_routing_are_html(
    settings_factory: Callable[..., TestClient], tenant: str, settings: Settings
) -> None:
    browser = settings_factory(max_body_bytes=2_000, rate_limit_per_minute=1)  # 4 a minute an address
    _signed_in(browser, tenant, settings)
    _page(browser.post("/patients/x/acknowledgements", data={"note": "x" * 5_000}), 413)
    answers = [browser.get("/") for _ in range(5)]
    limited = answers[-1]
    _page(limited, 429)
    assert limited.headers["retry-after"].isdigit()


def test_page_database_unavailable_is_html(
    client: TestClient, no_database: TestClient, tenant: str, settings: Settings
) -> None:
    browser = TestClient(client.app, raise_server_exceptions=False)
    _signed_in(browser, tenant, settings)
    no_database.cookies = browser.cookies  # the same signed session, on an app whose database is gone
    _page(no_database.get("/"), 503)
