"""A test app with the coordinator pages installed, and a small browser-like driver for forms and CSRF tokens.

The app is built with `create_app(settings)` then `install_web(app)` (a no-op once app.py wires the pages).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.app import create_app
from service.auth.principal import Role
from service.auth.tokens import mint_dev_token
from service.caseload.tables import PlanStatusRow
from service.settings import Settings
from service.web import install_web
from tests.builders import PHQ9_ITEMS, ApiDriver, enrollment_body, questionnaire_body

PAGE_SIZE = 5
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


@pytest.fixture(scope="session")
def web_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"default_page_size": PAGE_SIZE})


@pytest.fixture(scope="session")
def web_app(web_settings: Settings) -> FastAPI:
    app = create_app(web_settings)
    install_web(app)
    install_web(app)  # a second call (app.py already wired) must change nothing
    return app


@pytest.fixture(scope="session")
def web_engine(web_app: FastAPI) -> Engine:
    engine: Engine = web_app.state.engine
    return engine


@dataclass
class Browser:
    """A TestClient with its own cookie jar, that signs in and fills forms the way a browser would."""

    client: TestClient
    settings: Settings
    last: httpx.Response | None = None

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        self.last = self.client.get(path, follow_redirects=False, **kwargs)
        return self.last

    def csrf(self) -> str:
        assert self.last is not None
        found = CSRF_FIELD.search(self.last.text)
        assert found, "no CSRF field on the last page"
        return found.group(1)

    def post(self, path: str, data: dict[str, str], *, csrf: str | None = None) -> httpx.Response:
        form = dict(data)
        if csrf is not None:
            form["csrf_token"] = csrf
        self.last = self.client.post(path, data=form, follow_redirects=False)
        return self.last

    def sign_in(self, tenant_id: str, role: Role = "coordinator", subject: str | None = None) -> None:
        self.get("/sign-in")
        token = mint_dev_token(self.settings, tenant=tenant_id, role=role, subject=subject)
        response = self.post("/sign-in", {"token": token, "next": "/"}, csrf=self.csrf())
        assert response.status_code == 303, response.text


@pytest.fixture
def browser(web_app: FastAPI, web_settings: Settings) -> Callable[..., Browser]:
    """browser(base_url='http://testserver'): a fresh browser (cookie jar) on the test app."""

    def open_browser(base_url: str = "http://testserver") -> Browser:
        return Browser(TestClient(web_app, base_url=base_url, raise_server_exceptions=True), web_settings)

    return open_browser


@pytest.fixture
def api_as(web_app: FastAPI, web_settings: Settings) -> Callable[..., ApiDriver]:
    def driver(tenant_id: str, role: Role = "ehr-system") -> ApiDriver:
        token = mint_dev_token(web_settings, tenant=tenant_id, role=role)
        return ApiDriver(TestClient(web_app), {"Authorization": f"Bearer {token}"})

    return driver


NOW = datetime.now(UTC)


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def phq9(patient_id: str, days_ago: float, *, item9: int = 0, each: int = 2) -> dict[str, Any]:
    answers = [{"link_id": i, "value_integer": each} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    return questionnaire_body(patient_id, authored_at=at(days_ago), answers=answers)


def enrolled_patient(api: ApiDriver, *, family_name: str = "Testperson", days_ago: int = 3, **extra: Any) -> str:
    patient_id = api.patient(family_name=family_name, given_name="Pat")
    start = (NOW - timedelta(days=days_ago)).date().isoformat()
    api.create("enrollments", enrollment_body(patient_id, start_date=start, **extra))
    return patient_id


def at_risk_patient(api: ApiDriver, family_name: str = "Riskworth") -> str:
    """Enrolled, with a baseline PHQ-9 whose item 9 is positive: status at_risk, flag phq9_item9_positive."""
    patient_id = enrolled_patient(api, family_name=family_name)
    api.create("questionnaire-responses", phq9(patient_id, 1, item9=1))
    return patient_id


def stored_status(engine: Engine, tenant_id: str, patient_id: str) -> PlanStatusRow:
    with Session(engine) as session:
        row = session.exec(
            select(PlanStatusRow).where(
                col(PlanStatusRow.tenant_id) == tenant_id, col(PlanStatusRow.patient_id) == patient_id
            )
        ).one()
        return row


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
