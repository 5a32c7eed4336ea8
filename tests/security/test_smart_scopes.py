"""SMART scopes, one model on every surface (issue #16, finding 4; docs/security.md 6.4).

A token with a scope claim is held to it on /api/v1, /fhir and the pages; a token without one is role-only on
/api/v1 and the pages and refused on /fhir. Batch entries are checked as if sent alone (a search needs `s`), and
granular scopes (`?category=…`) grant nothing, with a refusal that says what to ask for instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.auth.principal import Principal
from service.settings import Settings
from service.web.session_cookie import COOKIE_NAME, encode_session, signed_in_session
from tests.builders import API, PATIENT_RECORD_BODIES
from tests.security.support import World, bad_page_sessions, bearer, build_world, role_headers, signed

QR = "questionnaire-responses"
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def world(client: TestClient, settings: Settings, engine: Engine) -> World:
    return build_world(client, settings, engine, family_name="Scopeperson")


def scoped(settings: Settings, world: World, scope: str | None, role: Any = "clinician") -> dict[str, str]:
    """A token of this tenant with exactly this scope claim (None: no scope claim at all)."""
    return bearer(signed(settings, tenant=world.tenant_id, role=role, scope=scope))


def _responses(client: TestClient, settings: Settings, world: World) -> list[str]:
    reader = role_headers(settings, world.tenant_id, "ehr-system")
    page = client.get(f"{API}/{QR}", params={"limit": 200}, headers=reader)
    assert page.status_code == 200, page.text
    return [item["id"] for item in page.json()["items"]]


def _refused(response: Any, *words: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    for word in words:
        assert word in response.json()["detail"], response.json()


@pytest.mark.parametrize("scope", ["", "patient/Observation.rs", "user/Observation.rs", "launch/*.cruds"])
def test_api_holds_a_token_to_its_scopes(client: TestClient, settings: Settings, world: World, scope: str) -> None:
    headers = scoped(settings, world, scope)
    record_id = world.ids[QR]
    before = _responses(client, settings, world)
    _refused(client.get(f"{API}/{QR}", headers=headers), "QuestionnaireResponse", "user/QuestionnaireResponse.s")
    _refused(client.get(f"{API}/{QR}/{record_id}", headers=headers), "user/QuestionnaireResponse.r")
    body = PATIENT_RECORD_BODIES[QR](world.ids["patients"])
    _refused(client.post(f"{API}/{QR}", json=body, headers=headers), "user/QuestionnaireResponse.c")
    patched = client.patch(
        f"{API}/{QR}/{record_id}", json={"status": "amended"}, headers={**headers, "If-Match": 'W/"1"'}
    )
    _refused(patched, "user/QuestionnaireResponse.u")
    assert _responses(client, settings, world) == before, "a refused write must store nothing"


def test_each_letter_grants_its_routes_only(client: TestClient, settings: Settings, world: World) -> None:
    """c/r/u/s on /api/v1 as on /fhir: create, read, update, list (search)."""
    record_id = world.ids[QR]
    calls = {
        "s": lambda h: client.get(f"{API}/{QR}", headers=h),
        "r": lambda h: client.get(f"{API}/{QR}/{record_id}", headers=h),
        "c": lambda h: client.post(f"{API}/{QR}", json=PATIENT_RECORD_BODIES[QR](world.ids["patients"]), headers=h),
        # an empty change with a stale ETag: past the scope check it is the ETag that refuses (412)
        "u": lambda h: client.patch(f"{API}/{QR}/{record_id}", json={}, headers={**h, "If-Match": 'W/"999"'}),
    }
    passed = {"s": {200}, "r": {200}, "c": {201, 200}, "u": {412}}
    failures = []
    for granted in ("s", "r", "c", "u"):
        for form in (f"user/QuestionnaireResponse.{granted}", f"system/QuestionnaireResponse.{granted}"):
            headers = scoped(settings, world, form, role="ehr-system" if form.startswith("system") else "clinician")
            for letter, call in calls.items():
                got = call(headers).status_code
                want = passed[letter] if letter == granted else {403}
                if got not in want:
                    failures.append(f"{form}: {letter} answered {got}, want {sorted(want)}")
    assert not failures, "\n".join(failures)
    v1 = scoped(settings, world, "user/QuestionnaireResponse.read")
    assert calls["r"](v1).status_code == 200 and calls["s"](v1).status_code == 200
    assert calls["c"](v1).status_code == 403


def test_a_token_without_a_scope_claim_is_role_only_on_api_and_refused_on_fhir(
    client: TestClient, settings: Settings, world: World
) -> None:
    headers = scoped(settings, world, None)
    assert client.get(f"{API}/{QR}/{world.ids[QR]}", headers=headers).status_code == 200
    assert client.get(f"{API}/{QR}", headers=scoped(settings, world, None, role="admin")).status_code == 403  # role
    refused = client.get(f"/fhir/QuestionnaireResponse/{world.ids[QR]}", headers=headers)
    assert refused.status_code == 403, refused.text
    assert "no scope claim" in refused.json()["issue"][0]["diagnostics"]


def _batch(client: TestClient, headers: dict[str, str], urls: list[str]) -> list[str]:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": u}} for u in urls],
    }
    response = client.post("/fhir", json=bundle, headers={**headers, "Content-Type": FHIR_JSON})
    assert response.status_code == 200, response.text
    return [entry["response"]["status"].split()[0] for entry in response.json()["entry"]]


def test_batch_get_entries_need_search_for_a_search_and_read_for_a_read(
    client: TestClient, settings: Settings, world: World
) -> None:
    observation = world.fhir_ids["Observation"]
    urls = [f"Observation?patient={world.ids['patients']}", f"Observation/{observation}"]
    assert _batch(client, scoped(settings, world, "user/Observation.r"), urls) == ["403", "200"]
    assert _batch(client, scoped(settings, world, "user/Observation.s"), urls) == ["200", "403"]
    assert _batch(client, scoped(settings, world, "user/Observation.rs"), urls) == ["200", "200"]
    alone = client.get(
        "/fhir/Observation",
        params={"patient": world.ids["patients"]},
        headers=scoped(settings, world, "user/Observation.r"),
    )
    assert alone.status_code == 403, "the same search sent alone is refused the same way"


def test_include_of_the_patient_needs_patient_read(client: TestClient, settings: Settings, world: World) -> None:
    params = {"patient": world.ids["patients"], "_include": "Observation:patient"}
    refused = client.get("/fhir/Observation", params=params, headers=scoped(settings, world, "user/Observation.rs"))
    assert refused.status_code == 403, refused.text
    assert "Patient" in refused.json()["issue"][0]["diagnostics"]
    allowed = scoped(settings, world, "user/Observation.rs user/Patient.r")
    found = client.get("/fhir/Observation", params=params, headers=allowed)
    assert found.status_code == 200, found.text
    assert any(e["resource"]["resourceType"] == "Patient" for e in found.json()["entry"])
    url = f"Observation?patient={world.ids['patients']}&_include=Observation:patient"
    assert _batch(client, scoped(settings, world, "user/Observation.rs"), [url]) == ["403"]
    assert _batch(client, allowed, [url]) == ["200"]


@pytest.mark.parametrize(
    "scope",
    ["user/Observation.rs?category=vital-signs", "user/QuestionnaireResponse.rs?questionnaire=phq-9"],
)
def test_a_granular_scope_grants_nothing_and_says_what_to_ask_for(
    client: TestClient, settings: Settings, world: World, scope: str
) -> None:
    headers = scoped(settings, world, scope)
    base = scope.split("?")[0]
    resource_type = base.split("/")[1].split(".")[0]
    fhir = client.get(f"/fhir/{resource_type}", params={"patient": world.ids["patients"]}, headers=headers)
    assert fhir.status_code == 403, fhir.text
    diagnostics = fhir.json()["issue"][0]["diagnostics"]
    assert f"granular scope {scope!r} is not supported; ask for {base}" in diagnostics
    status = _batch(client, headers, [f"{resource_type}?patient={world.ids['patients']}"])
    assert status == ["403"]
    if resource_type == "QuestionnaireResponse":  # and on /api/v1: no scores come back
        _refused(client.get(f"{API}/{QR}", headers=headers), "granular scope", f"ask for {base}")


def _page_cookie(settings: Settings, world: World, scopes: frozenset[str] | None) -> dict[str, str]:
    principal = Principal(subject="web-scoped", tenant_id=world.tenant_id, role="clinician", scopes=scopes)
    return {COOKIE_NAME: encode_session(signed_in_session(principal), settings)}


def test_pages_hold_a_signed_in_token_to_its_scopes(client: TestClient, settings: Settings, world: World) -> None:
    patient_page = f"/patients/{world.ids['patients']}"
    # signing in with a token that may only read Observations: the session keeps its scopes
    cookie, csrf = bad_page_sessions(settings, world.tenant_id)["anonymous session"]
    token = signed(settings, tenant=world.tenant_id, role="clinician", scope="user/Observation.rs")
    client.cookies.clear()
    signed_in = client.post(
        "/sign-in",
        data={"csrf_token": csrf, "token": token, "next": patient_page},
        cookies=cookie,
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
    session_cookie = {COOKIE_NAME: signed_in.cookies[COOKIE_NAME]}
    client.cookies.clear()
    for path in (patient_page, "/"):
        refused = client.get(path, cookies=session_cookie, follow_redirects=False)
        assert refused.status_code == 403, (path, refused.status_code, refused.text[:300])
        assert "user/" in refused.text
    client.cookies.clear()
    full = _page_cookie(settings, world, frozenset({"user/*.cruds"}))
    assert client.get(patient_page, cookies=full, follow_redirects=False).status_code == 200
    client.cookies.clear()
    no_claim = _page_cookie(settings, world, None)  # a token without a scope claim, or a demo sign-in
    assert client.get(patient_page, cookies=no_claim, follow_redirects=False).status_code == 200
    client.cookies.clear()
