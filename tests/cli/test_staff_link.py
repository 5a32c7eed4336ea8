"""`tandem staff link`: an operator says who a signed-in user is, so the worklist's "my patients" is theirs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from service.cli import app
from service.settings import get_settings
from service.worklist.tables import StaffLink
from tests.builders import ApiDriver, practitioner_body


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _link(*args: str) -> tuple[int, str]:
    ran = CliRunner().invoke(app, ["staff", "link", *args])
    return ran.exit_code, " ".join(ran.output.split())


def test_a_user_is_linked_to_an_active_practitioner_and_can_be_relinked(
    cli_env: None, client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "admin"))
    first = api.create(
        "practitioners", practitioner_body(family_name="Dlamini", given_name="Thandi", role="coordinator")
    )
    second = api.create("practitioners", practitioner_body(family_name="Okafor", role="coordinator"))
    code, said = _link(tenant, "coordinator-7", first["id"])
    assert code == 0, said
    assert f"coordinator-7 at {tenant} is Dlamini, Thandi (coordinator)" in said
    assert _link(tenant, "coordinator-7", second["id"])[0] == 0
    with Session(engine) as session:
        link = session.get(StaffLink, (tenant, "coordinator-7"))
    assert link is not None and link.practitioner_id == second["id"]


def test_a_link_to_a_missing_inactive_or_other_hospitals_practitioner_is_refused(
    cli_env: None,
    client: TestClient,
    engine: Engine,
    new_tenant: Callable[[], str],
    auth: Callable[..., dict[str, str]],
) -> None:
    tenant, other = new_tenant(), new_tenant()
    retired = ApiDriver(client, auth(tenant, "admin")).create("practitioners", practitioner_body(active=False))
    theirs = ApiDriver(client, auth(other, "admin")).create("practitioners", practitioner_body())
    refusals = [
        (["no-such-practitioner"], "no practitioner with id 'no-such-practitioner'"),
        ([retired["id"]], "is not active"),
        ([theirs["id"]], f"no practitioner with id '{theirs['id']}'"),  # another hospital's reads as missing
    ]
    for practitioner, words in refusals:
        code, said = _link(tenant, "coordinator-8", *practitioner)
        assert code == 2 and words in said, said
    assert _link(tenant, " ", retired["id"])[0] == 2
    with Session(engine) as session:
        assert session.get(StaffLink, (tenant, "coordinator-8")) is None
