"""`tandem tenant self-report`: a hospital's crisis words, whether staff will call, how long links last; refused in
words otherwise, nothing changed. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from service.cli import app
from service.self_report.invitations import DEFAULT_CRISIS_TEXT, hospital_settings
from service.settings import get_settings


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    ran = CliRunner().invoke(app, ["tenant", "self-report", *args])
    return ran.exit_code, " ".join(ran.output.split())


def test_the_settings_change_and_bad_ones_are_refused(cli_env: None, engine: Engine, tenant: str) -> None:
    with Session(engine) as session:
        before = hospital_settings(session, tenant)
    assert (before.crisis_text, before.staff_will_call, before.link_valid_days) == (DEFAULT_CRISIS_TEXT, False, 7)
    code, out = _run(tenant, "--crisis-text", "Ring the ward: 0800 000 000.", "--staff-will-call")
    assert code == 0 and "says staff will contact the patient" in out, out
    for bad in (["--link-valid-days", "0"], ["--crisis-text", "  "]):
        code, out = _run(tenant, *bad)
        assert code == 2, out
    assert _run("no-such-hospital", "--staff-will-call")[0] == 2
    with Session(engine) as session:
        after = hospital_settings(session, tenant)
    assert (after.crisis_text, after.staff_will_call, after.link_valid_days) == (
        "Ring the ward: 0800 000 000.",
        True,
        7,
    )
