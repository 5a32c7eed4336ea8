"""Hardening that exists today: no caching of patient data, security headers on pages, errors that show no
internals, and no mass assignment. (SSRF on EHR target URLs: tests/sync/test_url_safety.py.)"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from service.api.page_headers import SECURITY_HEADERS
from service.api.rate_limit import ADDRESS_BUCKET_SIZE
from service.settings import Settings
from tests.builders import API, PATIENT_RECORD_BODIES, ApiDriver, patient_body, practitioner_body, sync_target_body
from tests.security.support import MISSING_ID, World, build_world, new_tenant_id, page_cookie, role_headers

FHIR_JSON = "application/fhir+json"
XXE = (
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b'<Patient xmlns="http://hl7.org/fhir"><id value="&e;"/></Patient>'
)
INTERNALS = re.compile(
    r"Traceback|File \"|sqlalchemy|psycopg|sqlite3|IntegrityError|OperationalError|DataError|"
    r"\bSELECT\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\bWHERE\b|site-packages|\.py\b|root:x:0",
)


@pytest.fixture(scope="module")
def world(client: TestClient, settings: Settings, engine: Engine) -> World:
    return build_world(client, settings, engine)


def _cookie(settings: Settings, tenant_id: str, role: str) -> dict[str, str]:
    cookie, _ = page_cookie(settings, tenant_id, role)  # type: ignore[arg-type]
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookie.items())}


def patient_data_responses(client: TestClient, settings: Settings, w: World) -> list[tuple[str, Response]]:
    """Every kind of response that carries patient data (or could: errors about a patient's records)."""
    ehr, admin = role_headers(settings, w.tenant_id, "ehr-system"), role_headers(settings, w.tenant_id, "admin")
    care = role_headers(settings, w.tenant_id, "clinician")
    fhir = {**ehr, "Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
    out: list[tuple[str, Response]] = []

    def get(url: str, headers: dict[str, str], **kwargs: Any) -> None:
        out.append((f"GET {url}", client.get(url, headers=headers, follow_redirects=False, **kwargs)))

    for kind in ("patients", "practitioners", *PATIENT_RECORD_BODIES):
        get(f"{API}/{kind}/{w.ids[kind]}", ehr)
        get(f"{API}/{kind}?patient_id={w.ids['patients']}" if kind in PATIENT_RECORD_BODIES else f"{API}/{kind}", ehr)
    get(f"{API}/sync/targets/{w.ids['sync/targets']}", admin)
    get(f"{API}/patients/{w.ids['patients']}/plan-status", care)
    get(f"{API}/caseload", care)
    get(f"{API}/sync/dead-letters", admin)
    get(f"{API}/sync/messages/{w.outbox_ids[0]}", admin)
    get(f"{API}/sync/targets/{w.ids['sync/targets']}/status", admin)
    get(f"{API}/patients/{MISSING_ID}", ehr)  # an error about a record
    get(f"{API}/patients", {"Authorization": "Bearer nope"})  # a refusal
    created = ApiDriver(client, ehr).client.post(f"{API}/patients", json=patient_body(), headers=ehr)
    out.append(("POST /api/v1/patients", created))
    for resource_type, resource_id in w.fhir_ids.items():
        get(f"/fhir/{resource_type}/{resource_id}", fhir)
        get(f"/fhir/{resource_type}/{resource_id}/_history", fhir)
        get(f"/fhir/{resource_type}/{resource_id}/_history/1", fhir)
        get(
            f"/fhir/{resource_type}?patient={w.ids['patients']}" if resource_type != "Patient" else "/fhir/Patient",
            fhir,
        )
    get(f"/fhir/Patient/{w.ids['patients']}", {**fhir, "If-None-Match": 'W/"1"'})  # 304
    get(f"/fhir/Patient/{MISSING_ID}", fhir)
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": "Patient"}}]}
    out.append(("POST /fhir (batch)", client.post("/fhir", json=batch, headers=fhir)))
    out.append(("POST /fhir/Patient/_search", client.post("/fhir/Patient/_search", data={}, headers=ehr)))
    for role, url in (("coordinator", "/"), ("coordinator", f"/patients/{w.ids['patients']}"), ("admin", "/sync")):
        get(url, _cookie(settings, w.tenant_id, role))
    get(f"/patients/{MISSING_ID}", _cookie(settings, w.tenant_id, "coordinator"))
    return out


def test_patient_data_is_never_cacheable(client: TestClient, settings: Settings, world: World) -> None:
    responses = patient_data_responses(client, settings, world)
    cacheable = [
        f"{label}: {r.status_code} Cache-Control={r.headers.get('cache-control')!r}"
        for label, r in responses
        if "no-store" not in (r.headers.get("cache-control") or "")
    ]
    print(f"\n[hardening] responses with patient data checked for Cache-Control: no-store: {len(responses)}")
    assert not cacheable, "\n".join(cacheable)


def test_pages_carry_security_headers(client: TestClient, settings: Settings, world: World) -> None:
    coordinator = _cookie(settings, world.tenant_id, "coordinator")
    pages = [
        ("/sign-in", {}),
        ("/", {}),  # the redirect to sign in
        ("/", coordinator),
        (f"/patients/{world.ids['patients']}", coordinator),
        (f"/patients/{MISSING_ID}", coordinator),  # an error page
        ("/sync", coordinator),  # refused (403 page)
        ("/sync", _cookie(settings, world.tenant_id, "admin")),
    ]
    missing = []
    for url, headers in pages:
        response = client.get(url, headers=headers, follow_redirects=False)
        for name, value in SECURITY_HEADERS.items():
            if response.headers.get(name) != value:
                missing.append(f"GET {url} ({response.status_code}): {name}={response.headers.get(name)!r}")
        if "frame-ancestors 'none'" not in response.headers.get("content-security-policy", ""):
            missing.append(f"GET {url}: CSP does not forbid framing")
        if "set-cookie" in response.headers:
            cookie = response.headers["set-cookie"].lower()
            if "httponly" not in cookie or "samesite=lax" not in cookie:
                missing.append(f"GET {url}: session cookie without HttpOnly/SameSite: {cookie}")
    print(f"\n[hardening] pages checked for security headers: {len(pages)}")
    assert not missing, "\n".join(missing)


def error_requests(settings: Settings, w: World) -> list[tuple[str, str, dict[str, Any]]]:
    ehr = role_headers(settings, w.tenant_id, "ehr-system")
    fhir = {**ehr, "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    patient_id = w.ids["patients"]
    huge = 10**40
    return [
        ("POST", f"{API}/patients", {"content": b"{not json", "headers": {**ehr, "Content-Type": "application/json"}}),
        ("POST", f"{API}/patients", {"content": b"\xff\xfe\x00garbage", "headers": ehr}),
        ("POST", f"{API}/patients", {"json": [1, 2, 3], "headers": ehr}),
        ("POST", f"{API}/patients", {"json": {"a": {"b": {"c": [[[[[]]]]]}}}, "headers": ehr}),
        ("POST", f"{API}/patients", {"content": b"[" * 5000 + b"]" * 5000, "headers": ehr}),
        ("POST", f"{API}/patients", {"json": patient_body(birth_date="1980-02-31"), "headers": ehr}),
        ("POST", f"{API}/patients", {"json": patient_body(family_name="x" * 100_000), "headers": ehr}),
        ("POST", f"{API}/patients", {"json": patient_body(family_name="\u0000nul"), "headers": ehr}),
        ("GET", f"{API}/patients?limit={huge}", {"headers": ehr}),
        ("GET", f"{API}/patients?limit=-1", {"headers": ehr}),
        ("GET", f"{API}/patients?cursor=%27%3B%20DROP%20TABLE%20patients%3B--", {"headers": ehr}),
        ("GET", f"{API}/patients?from=not-a-date", {"headers": ehr}),
        ("GET", f"{API}/caseload?page={huge}", {"headers": ehr}),
        ("GET", f"{API}/caseload?page_size={huge}", {"headers": role_headers(settings, w.tenant_id, "clinician")}),
        ("GET", f"{API}/patients/{'9' * 70}", {"headers": ehr}),
        ("GET", f"{API}/sync/messages/{huge}", {"headers": role_headers(settings, w.tenant_id, "admin")}),
        ("POST", f"{API}/sync/dead-letters/{huge}/replay", {"headers": role_headers(settings, w.tenant_id, "admin")}),
        ("POST", f"/sync/dead-letters/{huge}/replay", {"headers": _cookie(settings, w.tenant_id, "admin")}),
        ("GET", f"/patients/{'9' * 5000}", {"headers": _cookie(settings, w.tenant_id, "coordinator")}),
        ("GET", f"{API}/patients/{patient_id}/plan-status?as_of=yesterday", {"headers": ehr}),
        ("GET", f"{API}/patients/{patient_id}/plan-status?as_of=9999-12-31T23:59:59Z", {"headers": ehr}),
        (
            "POST",
            f"{API}/ketamine-administrations",
            {
                "json": PATIENT_RECORD_BODIES["ketamine-administrations"](patient_id, dose_mg_per_kg=1e308),
                "headers": ehr,
            },
        ),
        (
            "POST",
            f"{API}/cbt-sessions",
            {"json": PATIENT_RECORD_BODIES["cbt-sessions"](patient_id, session_number=huge), "headers": ehr},
        ),
        (
            "POST",
            f"{API}/cbt-sessions",
            {"json": PATIENT_RECORD_BODIES["cbt-sessions"](patient_id, session_number=2**40), "headers": ehr},
        ),
        (
            "POST",
            f"{API}/ketamine-administrations",
            {
                "json": PATIENT_RECORD_BODIES["ketamine-administrations"](patient_id, observation_minutes=2**40),
                "headers": ehr,
            },
        ),
        (
            "PATCH",
            f"{API}/patients/{patient_id}",
            {"json": {"family_name": "x"}, "headers": {**ehr, "If-Match": "garbage"}},
        ),
        ("PATCH", f"{API}/patients/{patient_id}", {"json": {"family_name": "x"}, "headers": ehr}),
        ("GET", "/api/v1/no-such-route", {"headers": ehr}),
        ("GET", "/no-such-page", {}),
        ("DELETE", f"{API}/patients", {"headers": ehr}),
        (
            "POST",
            "/fhir/Patient",
            {
                "content": b"<Patient xmlns='http://hl7.org/fhir'><oops",
                "headers": {**ehr, "Content-Type": "application/fhir+xml"},
            },
        ),
        (
            "POST",
            "/fhir/Patient",
            {
                "content": XXE,
                "headers": {**ehr, "Content-Type": "application/fhir+xml"},
            },
        ),
        ("POST", "/fhir/Patient", {"content": b"{", "headers": fhir}),
        ("POST", "/fhir/Patient", {"json": {"resourceType": "Observation"}, "headers": fhir}),
        ("POST", "/fhir/Patient", {"json": {"resourceType": "Patient", "birthDate": "1980-13-45"}, "headers": fhir}),
        ("GET", f"/fhir/Patient?_count={huge}", {"headers": fhir}),
        ("GET", f"/fhir/Patient?_offset={huge}", {"headers": fhir}),
        ("GET", "/fhir/Patient?birthdate=gt1980-99-99", {"headers": fhir}),
        ("GET", "/fhir/Observation?date=ge" + "9" * 50, {"headers": fhir}),
        ("GET", "/fhir/Patient?_sort=;DROP", {"headers": {**fhir, "Prefer": "handling=strict"}}),
        ("GET", f"/fhir/Patient/{patient_id}/_history/{huge}", {"headers": fhir}),
        ("GET", f"/fhir/Patient/{patient_id}/_history/abc", {"headers": fhir}),
        ("GET", "/fhir/NoSuchType", {"headers": fhir}),
        ("POST", "/fhir", {"json": {"resourceType": "Bundle", "type": "batch", "entry": "nope"}, "headers": fhir}),
        (
            "POST",
            "/fhir",
            {
                "json": {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "GET"}}]},
                "headers": fhir,
            },
        ),
        ("PUT", f"/fhir/Patient/{patient_id}", {"json": {"resourceType": "Patient", "id": "other"}, "headers": fhir}),
        ("GET", "/fhir/Patient", {"headers": {**ehr, "Accept": "application/x-nonsense"}}),
    ]


# Open findings (reported, see docs/security.md): client input that still ends in a 500. The body is generic
# (no internals) but the status is wrong, and the logged exception carries the SQL parameters. Allowed to be 500
# here so CI stays green until fixed; any other 500 fails.
# 500s still open, with why (each fixed one is removed; an empty map means every forced error is a 4xx).
KNOWN_500: dict[str, str] = {}


def known_500(label: str) -> str | None:
    return next((why for key, why in KNOWN_500.items() if key in label), None)


def test_errors_never_show_internals(client: TestClient, settings: Settings, world: World) -> None:
    problems = []
    known: list[str] = []
    statuses: dict[int, int] = {}
    requests = error_requests(settings, world)
    for method, url, kwargs in requests:
        response = client.request(method, url, follow_redirects=False, **kwargs)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        shown = INTERNALS.search(response.text)
        if shown:
            problems.append(
                f"{method} {url[:80]}: {response.status_code} shows {shown.group(0)!r}: {response.text[:300]}"
            )
        if response.status_code >= 500 and known_500(f"{method} {url}"):
            known.append(f"{method} {url[:90]} -> {response.status_code}: {known_500(f'{method} {url}')}")
        elif response.status_code >= 500:
            problems.append(
                f"{method} {url[:80]}: {response.status_code} (a client error should be 4xx): {response.text[:200]}"
            )
    print(f"\n[hardening] forced errors: {len(requests)}; statuses {dict(sorted(statuses.items()))}")
    for line in known:
        print(f"    known open finding: {line}")
    assert not problems, "\n".join(problems)


# ---- mass assignment -----------------------------------------------------------------------------------------

SERVER_FIELDS = {
    "id": MISSING_ID,
    "tenant_id": "another-hospital",
    "version": 99,
    "created_at": "2001-01-01T00:00:00Z",
    "updated_at": "2001-01-01T00:00:00Z",
    "created_by": "mallory",
    "score": {"total": 0},
    "total_score": 0,
    "audit": {"actor": "mallory"},
    "outbox": {"status": "delivered"},
    "deleted": True,
    "entered_in_error": True,
}


def test_clients_cannot_set_server_owned_fields(
    client: TestClient, settings: Settings, world: World, engine: Engine
) -> None:
    ehr, admin = role_headers(settings, world.tenant_id, "ehr-system"), role_headers(settings, world.tenant_id, "admin")
    patient_id = world.ids["patients"]
    bodies: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
        "patients": (patient_body(), ehr),
        "practitioners": (practitioner_body(), ehr),
        **{k: (build(patient_id), ehr) for k, build in PATIENT_RECORD_BODIES.items()},
        "sync/targets": (sync_target_body(), admin),
    }
    accepted = []
    tried = 0
    for kind, (body, headers) in bodies.items():
        for name, value in SERVER_FIELDS.items():
            tried += 1
            created = client.post(f"{API}/{kind}", json={**body, name: value}, headers=headers)
            if created.status_code != 422:
                accepted.append(f"POST {API}/{kind} with {name}: {created.status_code} {created.text[:200]}")
            reader = admin if kind == "sync/targets" else ehr
            etag = client.get(f"{API}/{kind}/{world.ids[kind]}", headers=reader).headers.get("etag", 'W/"1"')
            changed = client.patch(
                f"{API}/{kind}/{world.ids[kind]}", json={name: value}, headers={**reader, "If-Match": etag}
            )
            if changed.status_code != 422:
                accepted.append(f"PATCH {API}/{kind}/{{id}} with {name}: {changed.status_code} {changed.text[:200]}")
    # FHIR: a resource naming another id, version, tenant tag or security label is stored as ours, with our ids
    other = new_tenant_id(engine)
    foreign_meta = {
        "versionId": "99",
        "lastUpdated": "2001-01-01T00:00:00Z",
        "tag": [{"system": "urn:tandem:tenant", "code": other}],
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "U"}],
    }
    fhir = {**ehr, "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    chosen_id = str(uuid.uuid4())
    for resource in (
        {**_fhir_patient(), "id": chosen_id, "meta": foreign_meta},
        {**_fhir_patient(), "id": world.ids["patients"], "meta": foreign_meta},
    ):
        tried += 1
        response = client.post("/fhir/Patient", json=resource, headers=fhir)
        if response.status_code not in (201, 422):
            accepted.append(f"POST /fhir/Patient with id/meta: {response.status_code} {response.text[:200]}")
            continue
        if response.status_code == 201:
            stored = response.json()
            if stored["id"] in (chosen_id, world.ids["patients"]) or stored["meta"].get("versionId") != "1":
                accepted.append(f"POST /fhir/Patient kept the client's id or version: {stored['id']} {stored['meta']}")
            if other in response.text or "mallory" in response.text:
                accepted.append("POST /fhir/Patient kept the client's tenant tag")
            foreign = client.get(f"/fhir/Patient/{stored['id']}", headers=role_headers(settings, other, "ehr-system"))
            if foreign.status_code != 404:
                accepted.append(f"a resource tagged with tenant {other} is readable there: {foreign.status_code}")
    print(f"\n[hardening] mass-assignment attempts: {tried}; accepted: {len(accepted)}")
    assert not accepted, "\n".join(accepted)


def _fhir_patient() -> dict[str, Any]:
    from tests.fhir.support import patient_resource

    return patient_resource()


# ---- rate limiting ---------------------------------------------------------------------------------------------


@pytest.fixture
def limited_client(settings: Settings) -> Any:
    from service.app import create_app

    with TestClient(
        create_app(settings.model_copy(update={"rate_limit_per_minute": 3})), raise_server_exceptions=False
    ) as limited:
        yield limited


def test_a_client_over_its_rate_gets_429_with_retry_after(limited_client: TestClient) -> None:
    answers = [limited_client.get(f"{API}/patients", headers={"Authorization": "Bearer same"}) for _ in range(5)]
    assert [a.status_code for a in answers][-1] == 429
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert "no-store" in answers[-1].headers.get("cache-control", "")


def test_rotating_unverified_tokens_does_not_escape_the_rate_limit(limited_client: TestClient) -> None:
    # The address has its own bucket, ADDRESS_BUCKET_SIZE times a client's: made-up tokens run into it.
    answers = [
        limited_client.get(f"{API}/patients", headers={"Authorization": f"Bearer guess-{i}"}).status_code
        for i in range(int(3 * ADDRESS_BUCKET_SIZE) + 4)
    ]
    assert 429 in answers, answers
