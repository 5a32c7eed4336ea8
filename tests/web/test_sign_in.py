"""Signing in and out: the session cookie's flags and signature, refusals, and the development demo sign-in."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from service.app import create_app
from service.auth.tokens import mint_dev_token
from service.db.unit_of_work import unit_of_work
from service.errors import RecordConflict
from service.settings import Settings
from service.tenants import register_tenant
from service.web import install_web
from service.web.session_cookie import COOKIE_NAME
from tests.conftest import TEST_SECRET, make_settings
from tests.web.conftest import Browser


def test_pages_send_the_signed_out_to_sign_in(browser: Callable[..., Browser]) -> None:
    b = browser()
    for path, expected in [
        ("/", "/sign-in?next=/"),
        ("/patients/abc", "/sign-in?next=/patients/abc"),
        ("/sync", "/sign-in?next=/sync"),
        ("/?status=at_risk", "/sign-in?next=/%3Fstatus%3Dat_risk"),
    ]:
        response = b.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == expected


def test_sign_in_sets_an_http_only_same_site_cookie_without_patient_data(
    browser: Callable[..., Browser], tenant: str
) -> None:
    b = browser()
    b.sign_in(tenant, "coordinator", subject="nurse-ada")
    cookie = b.last.headers["set-cookie"] if b.last is not None else ""
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain http (a developer's machine); see the https test below
    body = cookie.split("=", 1)[1].split(";", 1)[0].split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    # who is signed in and the sign-in token's SMART scopes (the pages hold the session to them); no patient data
    assert set(payload) == {"v", "sid", "exp", "sub", "ten", "role", "scp"}
    assert (payload["sub"], payload["ten"], payload["role"]) == ("nurse-ada", tenant, "coordinator")
    page = b.get("/")
    assert page.status_code == 200
    assert "nurse-ada" in page.text


def test_cookie_is_secure_over_https(browser: Callable[..., Browser], tenant: str) -> None:
    b = browser("https://testserver")
    b.sign_in(tenant)
    assert b.last is not None
    assert "Secure" in b.last.headers["set-cookie"]
    assert b.get("/").status_code == 200


def test_a_changed_cookie_is_not_a_session(
    browser: Callable[..., Browser], tenant: str, new_tenant: Callable[[], str]
) -> None:
    b = browser()
    b.sign_in(tenant)
    value = b.client.cookies[COOKIE_NAME]
    body, signature = value.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["ten"] = new_tenant()
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    b.client.cookies.set(COOKIE_NAME, f"{forged}.{signature}")
    assert b.get("/").status_code == 303


def test_sign_in_refuses_bad_tokens_and_roles_without_pages(
    browser: Callable[..., Browser], tenant: str, web_settings: Settings
) -> None:
    b = browser()
    b.get("/sign-in")
    refused = b.post("/sign-in", {"token": "not-a-jwt"}, csrf=b.csrf())
    assert refused.status_code == 401
    assert "not a well-formed JWT" in refused.text
    ehr = mint_dev_token(web_settings, tenant=tenant, role="ehr-system")
    refused = b.post("/sign-in", {"token": ehr}, csrf=b.csrf())
    assert refused.status_code == 403
    assert "cannot use these pages" in refused.text
    unknown = mint_dev_token(web_settings, tenant="no-such-hospital", role="coordinator")
    refused = b.post("/sign-in", {"token": unknown}, csrf=b.csrf())
    assert refused.status_code == 403
    assert "not registered" in refused.text
    assert b.get("/").status_code == 303


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(
    browser: Callable[..., Browser], tenant: str, web_settings: Settings
) -> None:
    token = mint_dev_token(web_settings, tenant=tenant, role="coordinator")
    for asked, landed in [
        ("/?status=at_risk", "/?status=at_risk"),
        ("//evil.example/", "/"),
        ("https://evil.example", "/"),
    ]:
        b = browser()
        b.get("/sign-in")
        response = b.post("/sign-in", {"token": token, "next": asked}, csrf=b.csrf())
        assert response.status_code == 303
        assert response.headers["location"] == landed


def test_sign_out_ends_the_session(browser: Callable[..., Browser], tenant: str) -> None:
    b = browser()
    b.sign_in(tenant)
    b.get("/")
    response = b.post("/sign-out", {}, csrf=b.csrf())
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?signed_out=1"
    assert b.get("/").status_code == 303


def test_demo_sign_in_only_in_development(browser: Callable[..., Browser], database_url: str) -> None:
    b = browser()
    page = b.get("/sign-in")
    assert "Demo coordinator" not in page.text
    assert b.post("/sign-in/demo", {"role": "coordinator"}, csrf=b.csrf()).status_code == 404

    app = create_app(make_settings(database_url, environment="development", dev_token_secret=TEST_SECRET))
    install_web(app)
    with unit_of_work(app.state.engine) as session, contextlib.suppress(RecordConflict):
        register_tenant(session, tenant_id="demo", name="Demo hospital")
    dev = Browser(TestClient(app), app.state.settings)
    page = dev.get("/sign-in")
    assert "Demo coordinator" in page.text and "Demo clinician" in page.text and "Demo admin" in page.text
    signed_in = dev.post("/sign-in/demo", {"role": "clinician"}, csrf=dev.csrf())
    assert signed_in.status_code == 303
    assert "demo-clinician" in dev.get("/").text
    dev.post("/sign-out", {}, csrf=dev.csrf())
    dev.get("/sign-in")
    admin = dev.post("/sign-in/demo", {"role": "admin"}, csrf=dev.csrf())
    assert admin.headers["location"] == "/sync"
    app.state.engine.dispose()
