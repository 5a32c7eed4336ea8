"""Cross-tenant probes (BOLA): tenant A names tenant B's records on every read path and must learn nothing.

Each probe is sent twice by A: once with B's value (an id, an identifier, a canonical) and once with a value
that exists nowhere. The two answers must be identical once the value itself is replaced by a placeholder
(same status, same body), and no answer to A may contain any of B's data (names, MRNs, other ids).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from service.settings import Settings
from tests.builders import API, PATIENT_RECORD_BODIES
from tests.security.support import (
    DERIVED_TYPES,
    FHIR_RECORD_TYPES,
    MISSING_ID,
    MISSING_INT_ID,
    World,
    build_world,
    new_tenant_id,
    page_cookie,
    role_headers,
)

FHIR_JSON = "application/fhir+json"
# Differ between any two calls: request ids, generated ids and timestamps, our own random source identifiers.
VOLATILE = re.compile(
    r'"(request_id|lastUpdated|id|created_at|updated_at|fullUrl|reference)"\s*:\s*"[^"]*"'
    r'|"value"\s*:\s*"[0-9a-f]{32}"|name="csrf_token" value="[^"]*"'
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


@pytest.fixture(scope="module")
def victim(client: TestClient, settings: Settings, engine: Engine) -> World:
    return build_world(client, settings, engine, family_name=f"Victimsdottir{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def attacker(client: TestClient, settings: Settings, engine: Engine) -> World:
    return build_world(client, settings, engine, family_name="Attackerson")


@dataclass
class Probe:
    label: str
    send: Callable[[str], Response]
    foreign: str
    missing: str


def _without(text: str, *values: str) -> str:
    """The text with each value (as sent, or URL-encoded) replaced by a placeholder, only where it stands alone."""
    for value in values:
        if value.isdigit():  # a short number: only where it stands as an id (quoted, or a path segment)
            for before, after in (("&#39;", "&#39;"), ("'", "'"), ('"', '"'), ("/", "/"), ("=", "&"), (": ", ",")):
                text = text.replace(f"{before}{value}{after}", f"{before}<value>{after}")
            continue
        for form in {value, quote(value, safe=""), quote_plus(value), quote(value)}:
            boundary = r"(?:(?<=%2F)|(?<=%7C)|(?<=%3A)|(?<![0-9A-Za-z]))"
            text = re.sub(rf"{boundary}{re.escape(form)}(?![0-9A-Za-z])", "<value>", text)
    return text


def _sent(value: str) -> list[str]:
    """A probe's value and, for system|value, the value alone: what A sent comes back to A (a Patient created
    with that identifier carries it), which is not B's data."""
    return [value, *value.split("|")[1:]]


def _normalised(response: Response, *values: str) -> tuple[int, str]:
    text = _without(response.text, *values)
    return response.status_code, VOLATILE.sub("<volatile>", text)


def probes(client: TestClient, settings: Settings, a: World, b: World) -> list[Probe]:
    def as_a(role: str, **extra: str) -> dict[str, str]:
        return {**role_headers(settings, a.tenant_id, role), **extra}  # type: ignore[arg-type]

    care = as_a("clinician")
    ehr = as_a("ehr-system")
    admin = as_a("admin")
    fhir = as_a("ehr-system", Accept=FHIR_JSON, **{"Content-Type": FHIR_JSON})
    found: list[Probe] = []

    def add(label: str, send: Callable[[str], Response], foreign: str, missing: str = MISSING_ID) -> None:
        found.append(Probe(label, send, foreign, missing))

    def get(url: str, headers: dict[str, str], **params: str) -> Callable[[str], Response]:
        return lambda value: client.get(
            url.format(v=value), headers=headers, params={k: p.format(v=value) for k, p in params.items()}
        )

    # ---- JSON API: direct ids
    for kind in ("patients", "practitioners", *PATIENT_RECORD_BODIES, "sync/targets"):
        headers = admin if kind == "sync/targets" else ehr
        add(f"GET {API}/{kind}/{{B}}", get(f"{API}/{kind}/{{v}}", headers), b.ids[kind])

        def patch(v: str, k: str = kind, h: dict[str, str] = headers) -> Response:
            return client.patch(f"{API}/{k}/{v}", json={}, headers={**h, "If-Match": 'W/"1"'})

        add(f"PATCH {API}/{kind}/{{B}}", patch, b.ids[kind])
    add("GET plan-status of B's patient", get(f"{API}/patients/{{v}}/plan-status", care), b.ids["patients"])
    add(
        "GET plan-status as_of of B's patient",
        get(f"{API}/patients/{{v}}/plan-status", care, as_of="2026-10-09T00:00:00Z"),
        b.ids["patients"],
    )
    code, occurrence = b.open_flags[0] if b.open_flags else ("phq9_item9_positive", MISSING_ID)
    add(
        "POST flag-acknowledgement on B's patient and enrollment",
        lambda v: client.post(
            f"{API}/patients/{v}/flag-acknowledgements",
            json={"enrollment_id": b.enrollment_id, "code": code, "occurrence_id": occurrence, "note": "x"},
            headers=care,
        ),
        b.ids["patients"],
    )
    add(
        "POST flag-acknowledgement on A's patient with B's enrollment",
        lambda v: client.post(
            f"{API}/patients/{a.ids['patients']}/flag-acknowledgements",
            json={"enrollment_id": v, "code": code, "occurrence_id": occurrence, "note": "x"},
            headers=care,
        ),
        b.enrollment_id,
    )
    # ---- JSON API: search parameters
    for kind in PATIENT_RECORD_BODIES:
        add(f"GET {API}/{kind}?patient_id=B", get(f"{API}/{kind}", ehr, patient_id="{v}"), b.ids["patients"])
    mrn = f"{b.mrn['system']}|{b.mrn['value']}"
    add(
        f"GET {API}/patients?identifier=B's MRN",
        get(f"{API}/patients", ehr, identifier="{v}"),
        mrn,
        "urn:test:mrn|nobody",
    )
    source = f"{b.source['system']}|{b.source['value']}"
    add(f"GET {API}/patients?identifier=B's source", get(f"{API}/patients", ehr, identifier="{v}"), source, "urn:x|y")
    # ---- caseload filters
    add("GET caseload?coordinator_id=B's", get(f"{API}/caseload", care, coordinator_id="{v}"), b.coordinator_id)
    add("GET caseload?protocol_id=B's", get(f"{API}/caseload", care, protocol_id="{v}"), b.protocol_id, "no-protocol")
    # ---- sync admin
    add("GET sync target status", get(f"{API}/sync/targets/{{v}}/status", admin), b.ids["sync/targets"])
    add(
        "GET dead-letters?target_id=B's", get(f"{API}/sync/dead-letters", admin, target_id="{v}"), b.ids["sync/targets"]
    )
    add("GET sync message", get(f"{API}/sync/messages/{{v}}", admin), str(b.outbox_ids[0]), str(MISSING_INT_ID))
    add(
        "POST replay B's dead letter",
        lambda v: client.post(f"{API}/sync/dead-letters/{v}/replay", headers=admin),
        str(b.outbox_ids[0]),
        str(MISSING_INT_ID),
    )
    add(
        "POST replay all of B's target",
        lambda v: client.post(f"{API}/sync/dead-letters/replay", params={"target_id": v}, headers=admin),
        b.ids["sync/targets"],
    )
    for action, body in (("dry-run", {"record_kind": "patients", "record_id": a.ids["patients"]}), ("pull", {})):

        def target_action(v: str, act: str = action, bd: dict[str, str] = body) -> Response:
            return client.post(f"{API}/sync/targets/{v}/{act}", json=bd, headers=admin)

        add(f"POST {action} on B's target", target_action, b.ids["sync/targets"])
    add(
        "POST dry-run of B's record on A's target",
        lambda v: client.post(
            f"{API}/sync/targets/{MISSING_ID}/dry-run", json={"record_kind": "patients", "record_id": v}, headers=admin
        ),
        b.ids["patients"],
        "11111111-1111-4111-8111-111111111111",
    )
    # ---- FHIR: read, vread, history, search, bundles, conditional create
    for resource_type, resource_id in b.fhir_ids.items():
        add(f"GET /fhir/{resource_type}/{{B}}", get(f"/fhir/{resource_type}/{{v}}", fhir), resource_id)
        add(
            f"GET /fhir/{resource_type}/{{B}}/_history", get(f"/fhir/{resource_type}/{{v}}/_history", fhir), resource_id
        )
        add(
            f"vread /fhir/{resource_type}/{{B}}/_history/1",
            get(f"/fhir/{resource_type}/{{v}}/_history/1", fhir),
            resource_id,
        )
        add(f"GET /fhir/{resource_type}?_id=B", get(f"/fhir/{resource_type}", fhir, _id="{v}"), resource_id)

        def post_search(v: str, t: str = resource_type) -> Response:
            return client.post(f"/fhir/{t}/_search", data={"_id": v}, headers={"Accept": FHIR_JSON, **ehr})

        add(f"POST /fhir/{resource_type}/_search _id=B", post_search, resource_id)
        if resource_type != "Patient":
            for param, value in (("patient", "{v}"), ("subject", "Patient/{v}"), ("patient", "Patient/{v}")):
                add(
                    f"GET /fhir/{resource_type}?{param}={value} + _include",
                    get(f"/fhir/{resource_type}", fhir, **{param: value, "_include": f"{resource_type}:patient"}),
                    b.ids["patients"],
                )

        def batch_read(v: str, t: str = resource_type) -> Response:
            return client.post("/fhir", json=_batch("GET", f"{t}/{v}"), headers=fhir)

        def batch_search(v: str, t: str = resource_type) -> Response:
            return client.post("/fhir", json=_batch("GET", f"{t}?_id={v}"), headers=fhir)

        add(f"batch GET {resource_type}/B", batch_read, resource_id)
        add(f"batch GET {resource_type}?_id=B", batch_search, resource_id)
    add(
        "GET /fhir/Patient?identifier=B's MRN", get("/fhir/Patient", fhir, identifier="{v}"), mrn, "urn:test:mrn|nobody"
    )
    for resource_type in ("Patient", "MedicationAdministration", "Encounter", "QuestionnaireResponse"):
        stored = client.get(
            f"/fhir/{resource_type}/{b.fhir_ids[resource_type]}",
            headers={**role_headers(settings, b.tenant_id, "ehr-system"), "Accept": FHIR_JSON},
        ).json()

        def batch_put(v: str, t: str = resource_type, s: dict[str, Any] = stored) -> Response:
            return client.post("/fhir", json=_batch("PUT", f"{t}/{v}", {**s, "id": v}), headers=fhir)

        def put(v: str, t: str = resource_type, s: dict[str, Any] = stored) -> Response:
            return client.put(f"/fhir/{t}/{v}", json={**s, "id": v}, headers={**fhir, "If-Match": 'W/"1"'})

        def delete(v: str, t: str = resource_type) -> Response:
            return client.delete(f"/fhir/{t}/{v}", headers=fhir)

        add(f"batch PUT {resource_type}/B", batch_put, b.fhir_ids[resource_type])
        add(f"PUT /fhir/{resource_type}/B", put, b.fhir_ids[resource_type])
        add(f"DELETE /fhir/{resource_type}/B", delete, b.fhir_ids[resource_type])
    add(
        "POST /fhir/Patient If-None-Exist identifier=B's MRN (existence oracle)",
        lambda v: _conditional_create(client, fhir, v),
        mrn,
        f"urn:test:mrn|MRN-NOBODY-{uuid.uuid4().hex[:6]}",
    )
    add(
        "POST /fhir/QuestionnaireResponse about B's patient",
        lambda v: client.post("/fhir/QuestionnaireResponse", json=_qr(a, v, None), headers=fhir),
        b.ids["patients"],
    )
    add(
        "POST QuestionnaireResponse to B's registered Questionnaire",
        lambda v: client.post(f"{API}/questionnaire-responses", json=_qr(a, a.ids["patients"], v), headers=fhir),
        b.registered_questionnaire,
        f"urn:test:questionnaire:{uuid.uuid4().hex}",
    )
    # ---- pages
    cookie, csrf = page_cookie(settings, a.tenant_id, "clinician")
    admin_cookie, admin_csrf = page_cookie(settings, a.tenant_id, "admin")

    def page(method: str, url: str, jar: dict[str, str], data: dict[str, str] | None = None) -> Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
        return client.request(method, url, headers=headers, data=data, follow_redirects=False)

    add("page /patients/B", lambda v: page("GET", f"/patients/{v}", cookie), b.ids["patients"])
    add(
        "page POST acknowledgement on B's patient",
        lambda v: page(
            "POST",
            f"/patients/{v}/acknowledgements",
            cookie,
            {
                "csrf_token": csrf,
                "enrollment_id": b.enrollment_id,
                "code": code,
                "occurrence_id": occurrence,
                "note": "x",
            },
        ),
        b.ids["patients"],
    )
    add("page /?coordinator=B's", lambda v: page("GET", f"/?coordinator={v}", cookie), b.coordinator_id)
    add(
        "page replay of B's dead letter",
        lambda v: page("POST", f"/sync/dead-letters/{v}/replay", admin_cookie, {"csrf_token": admin_csrf}),
        str(b.outbox_ids[0]),
        str(MISSING_INT_ID),
    )
    return found


def _batch(method: str, url: str, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": {"method": method, "url": url}}
    if resource is not None:
        entry["resource"] = resource
    return {"resourceType": "Bundle", "type": "batch", "entry": [entry]}


def _conditional_create(client: TestClient, headers: dict[str, str], identifier: str) -> Response:
    system, value = identifier.split("|", 1)
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": value}],
        "name": [{"family": "Probe", "given": ["Oracle"]}],
        "gender": "unknown",
    }
    return client.post("/fhir/Patient", json=resource, headers={**headers, "If-None-Exist": f"identifier={identifier}"})


def _qr(world: World, patient_id: str, canonical: str | None) -> dict[str, Any]:
    loinc = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical or "http://loinc.org/q/44249-1",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": "2026-10-06T08:30:00+01:00",
        "identifier": {"system": "urn:test:bola", "value": uuid.uuid4().hex},
        "item": [
            {"linkId": f"/{code}", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6568-5"}}]}
            for code in loinc
        ],
    }


def _b_markers(b: World, family_name: str) -> set[str]:
    return {family_name, b.mrn["value"], b.source["value"], b.tenant_id, *b.ids.values(), *b.fhir_ids.values()}


def test_another_tenants_records_answer_exactly_like_missing_ones(
    client: TestClient, settings: Settings, victim: World, attacker: World
) -> None:
    b_family = client.get(
        f"{API}/patients/{victim.ids['patients']}", headers=role_headers(settings, victim.tenant_id, "ehr-system")
    ).json()["family_name"]
    markers = _b_markers(victim, b_family)
    leaks: list[str] = []
    tried = 0
    for probe in probes(client, settings, attacker, victim):
        foreign = probe.send(probe.foreign)
        missing = probe.send(probe.missing)
        tried += 1
        if foreign.status_code >= 500 or missing.status_code >= 500:
            leaks.append(f"{probe.label}: server error {foreign.status_code}/{missing.status_code}")
        if _normalised(foreign, *_sent(probe.foreign)) != _normalised(missing, *_sent(probe.missing)):
            leaks.append(
                f"{probe.label}: B's value answers {foreign.status_code} {foreign.text[:300]!r}, "
                f"a missing one {missing.status_code} {missing.text[:300]!r}"
            )
        # What A sent comes back to A (a created Patient carries the identifier A gave it): not B's data.
        echoed = _without(foreign.text, *_sent(probe.foreign))
        shown = sorted(m for m in markers if m and m in echoed)
        if shown:
            leaks.append(f"{probe.label}: the answer shows B's data {shown}")
    # B's records are untouched by everything A sent
    b_headers = role_headers(settings, victim.tenant_id, "ehr-system")
    for kind in ("patients", *PATIENT_RECORD_BODIES):
        record = client.get(f"{API}/{kind}/{victim.ids[kind]}", headers=b_headers)
        if record.status_code != 200 or record.json()["version"] != 1:
            leaks.append(f"B's {kind} record changed: {record.status_code} {record.text[:200]}")
    for resource_type, resource_id in victim.fhir_ids.items():
        if client.get(f"/fhir/{resource_type}/{resource_id}", headers=b_headers).status_code != 200:
            leaks.append(f"B's {resource_type}/{resource_id} is no longer readable by B")
    print(f"\n[BOLA] probes tried: {tried} (each with B's value and a missing one); leaks found: {len(leaks)}")
    assert not leaks, "\n".join(leaks)


def test_collections_never_list_another_tenants_records(
    client: TestClient, settings: Settings, victim: World, attacker: World
) -> None:
    """Unfiltered lists, registries and the caseload's counts hold only A's own rows."""
    b_values = set(victim.ids.values()) | {victim.registered_questionnaire, victim.protocol_id, victim.coordinator_id}
    a_headers = {r: role_headers(settings, attacker.tenant_id, r) for r in ("ehr-system", "clinician", "admin")}
    urls = [
        *((f"{API}/{kind}?limit=200", "ehr-system") for kind in ("patients", "practitioners", *PATIENT_RECORD_BODIES)),
        (f"{API}/sync/targets?limit=200", "admin"),
        (f"{API}/sync/dead-letters?limit=500", "admin"),
        (f"{API}/questionnaires", "admin"),
        (f"{API}/protocols", "admin"),
        (f"{API}/caseload?page_size=200", "clinician"),
        *((f"/fhir/{t}?_count=200", "ehr-system") for t in FHIR_RECORD_TYPES),
        *((f"/fhir/{t}?_count=200", "ehr-system") for t in DERIVED_TYPES),
    ]
    leaks = []
    for url, role in urls:
        response = client.get(url, headers=a_headers[role])
        assert response.status_code == 200, (url, response.text)
        # A's own probe wrote B's canonical into one of A's responses (as a string it sent): not B's data
        own_echo = set() if url.startswith(f"{API}/questionnaires") else {victim.registered_questionnaire}
        shown = sorted(v for v in b_values - own_echo if v in response.text)
        if shown:
            leaks.append(f"GET {url} as {role} lists B's {shown}")
    caseload = client.get(f"{API}/caseload", headers=a_headers["clinician"]).json()
    assert sum(caseload["counts_by_status"].values()) == caseload["total"] == 1, caseload  # A's one enrollment
    cookie, _ = page_cookie(settings, attacker.tenant_id, "coordinator")
    for url in ("/", "/?page=1&sort=name"):
        text = client.get(url, headers={"Cookie": f"tandem_session={cookie['tandem_session']}"}).text
        if any(v in text for v in b_values):
            leaks.append(f"page {url} shows B's records")
    admin_cookie, _ = page_cookie(settings, attacker.tenant_id, "admin")
    sync_page = client.get("/sync", headers={"Cookie": f"tandem_session={admin_cookie['tandem_session']}"}).text
    # B's message ids where the page names a message (its replay URL and label), not digits of other numbers
    shown_ids = [i for i in victim.outbox_ids if re.search(rf'/dead-letters/{i}/|message {i}"', sync_page)]
    shown_values = [v for v in b_values if v in sync_page]
    if shown_ids or shown_values:
        leaks.append(f"page /sync shows B's targets or messages: {shown_values} {shown_ids}")
    print(f"\n[BOLA] collections checked: {len(urls) + 3}; leaks found: {len(leaks)}")
    assert not leaks, "\n".join(leaks)


def test_the_audit_trail_export_shows_nothing_of_another_tenant(
    client: TestClient, settings: Settings, engine: Engine, victim: World
) -> None:
    """GET /fhir/AuditEvent (admin): filtering on B's patient finds nothing, and A's own failed attempts on B's
    records never carry anything A did not send (e.g. B's patient id resolved from B's enrollment id)."""
    snoop = new_tenant_id(engine)
    admin = {**role_headers(settings, snoop, "admin"), "Accept": FHIR_JSON}
    foreign = client.get("/fhir/AuditEvent", params={"patient": victim.ids["patients"]}, headers=admin)
    missing = client.get("/fhir/AuditEvent", params={"patient": MISSING_ID}, headers=admin)
    assert foreign.status_code == missing.status_code == 200
    assert foreign.json()["total"] == missing.json()["total"] == 0, foreign.text[:500]
    ehr = role_headers(settings, snoop, "ehr-system")
    tried = 2
    for kind in PATIENT_RECORD_BODIES:  # records that name B's patient; A sends only the record's own id
        assert client.get(f"{API}/{kind}/{victim.ids[kind]}", headers=ehr).status_code == 404
        tried += 1
    for resource_type, resource_id in victim.fhir_ids.items():
        if resource_type != "Patient":
            assert client.get(f"/fhir/{resource_type}/{resource_id}", headers=ehr).status_code == 404
            tried += 1
    trail = client.get("/fhir/AuditEvent", params={"_count": "1000"}, headers=admin)
    assert trail.status_code == 200, trail.text
    assert victim.ids["patients"] not in trail.text, "A's audit trail names B's patient, which A never sent"
    assert victim.tenant_id not in trail.text
    print(f"\n[BOLA] audit trail export probes: {tried}; leaks found: 0")
