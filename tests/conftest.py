"""Test databases (SQLite and a real PostgreSQL), built by running the migrations, and an app per database.

Every test gets tenants of its own, so tests share a database without seeing each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from fhir_mappings import release as fhir_release
from service.app import create_app
from service.auth.principal import Role
from service.auth.tokens import mint_dev_token
from service.db import migrations
from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.settings import Settings
from service.tenants import register_tenant
from tests.pure_suite import IMPURE_FIXTURES, PURE_PATHS

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def pytest_configure(config: pytest.Config) -> None:
    """The mappers' check mode (fhir_mappings/release.py): every resource a mapper builds is validated by
    fhir.resources and to_json's fast path compared with its serialiser, in the test processes and in the servers
    they start (they inherit the variable); a hook, not an import side effect, because bench/ imports this module's
    helpers and must measure the production path, which does not check."""
    os.environ["TANDEM_CHECK_MAPPERS"] = "1"
    fhir_release.check_mappers = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the fast suite's tests `pure` (tests/pure_suite.py)."""
    root = project_root()
    missing = [path for path in PURE_PATHS if not (root / path).exists()]
    if missing:
        raise pytest.UsageError(f"tests/pure_suite.py PURE_PATHS names paths that do not exist: {missing}")
    for item in items:
        relative = item.path.relative_to(root).as_posix()
        if not any(relative == path or relative.startswith(f"{path}/") for path in PURE_PATHS):
            continue
        impure = IMPURE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if impure:
            raise pytest.UsageError(f"{item.nodeid} is in the pure suite but uses {sorted(impure)}")
        item.add_marker(pytest.mark.pure)


def postgres_admin_url() -> str:
    url = make_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def skip_or_fail_postgres(reason: str) -> None:
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def create_postgres_database() -> tuple[str, Callable[[], None]]:
    """A fresh, empty database on the test server; returns its URL and a function that drops it."""
    admin_url = postgres_admin_url()
    name = f"tandem_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        skip_or_fail_postgres(f"no PostgreSQL reachable at {make_url(admin_url).render_as_string()}: {error.orig}")

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of each kind, shared by the session (tests isolate themselves by tenant)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'tandem.db'}"
        migrations.upgrade(url)
        yield url
        return
    url, drop = create_postgres_database()
    try:
        migrations.upgrade(url)
        yield url
    finally:
        drop()


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "environment": "test",
        "dev_token_secret": TEST_SECRET,
        # The suite sends thousands of requests with one token; the limit itself is tested with a small one.
        "rate_limit_per_minute": 0,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def engine(client: TestClient) -> Engine:
    app_engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return app_engine


@pytest.fixture
def new_tenant(engine: Engine) -> Callable[[], str]:
    """Registers a fresh tenant and returns its id."""

    def register() -> str:
        tenant_id = f"t-{uuid.uuid4().hex[:12]}"
        with unit_of_work(engine) as session:
            register_tenant(session, tenant_id=tenant_id, name=f"Test hospital {tenant_id}")
        return tenant_id

    return register


@pytest.fixture
def tenant(new_tenant: Callable[[], str]) -> str:
    return new_tenant()


@pytest.fixture
def auth(settings: Settings) -> Callable[..., dict[str, str]]:
    """Headers with a development bearer token: auth(tenant, role='clinician')."""

    def headers(tenant_id: str, role: Role = "clinician", subject: str | None = None) -> dict[str, str]:
        token = mint_dev_token(settings, tenant=tenant_id, role=role, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    return headers


def fresh_engine(url: str) -> Engine:
    return make_engine(url, pool_size=2)


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def settings_factory(database_url: str) -> Iterator[Callable[..., TestClient]]:
    """A separate app on the same database with some settings changed: settings_factory(rate_limit_per_minute=5)."""
    clients: list[TestClient] = []

    def build(**overrides: object) -> TestClient:
        test_client = TestClient(create_app(make_settings(database_url, **overrides)), raise_server_exceptions=False)
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield build
    for test_client in clients:
        test_client.__exit__(None, None, None)
