"""The `tandem` command: its version, and the long commands' progress and closing summary (issue #24 part 7).

`tandem import`, `tandem sync pull|backfill` and `tandem demo load` are tested with their summaries in their own
files (tests/cli/test_import*.py, tests/sync/); `tandem sync export` tells its progress bar in
tests/sync/test_pull_real_ehrs.py. Here: the version, the status sweep, and the benchmark run's last line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from importlib.metadata import version

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from bench.run import summary_line
from service.caseload.tables import PlanStatusRow
from service.cli import app
from service.patient_refresh import sweep
from service.settings import get_settings
from tests.builders import ApiDriver, enrollment_body

SWEEP_SUMMARY = re.compile(
    r"plan statuses recomputed: (\d+) patients; break-the-glass grants expired and closed: (\d+); "
    r"questionnaires sent: (\d+); "
    r"patient messages sent: \d+, deferred for quiet hours: \d+, failed: \d+, dead: \d+, cannot be sent: \d+; "
    r"subscription heartbeats queued: \d+ \(\d+\.\d s\)"
)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _due_enrolment(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> tuple[str, datetime]:
    """An enrolled patient whose stored plan status is due for a recompute (stored a month ago)."""
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    enrollment_id: str = api.create("enrollments", enrollment_body(api.patient()))["id"]
    with Session(engine) as session:
        row = session.get(PlanStatusRow, (tenant, enrollment_id))
        assert row is not None
        stale_at = row.computed_at - timedelta(days=30)
        row.computed_at = row.next_recompute_at = stale_at
        session.add(row)
        session.commit()
    return enrollment_id, stale_at


def test_version_is_the_installed_packages() -> None:
    ran = CliRunner().invoke(app, ["--version"])
    assert ran.exit_code == 0, ran.output
    assert ran.output == f"tandem {version('tandem')}\n"


def test_without_arguments_the_command_lists_its_commands() -> None:
    ran = CliRunner().invoke(app, [])
    assert "Usage" in ran.output and "import" in ran.output and "--version" in ran.output


def test_the_status_sweep_ends_with_a_summary(
    cli_env: None, client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    enrollment_id, stale_at = _due_enrolment(client, engine, tenant, auth)
    ran = CliRunner().invoke(app, ["status", "sweep"])
    assert ran.exit_code == 0, ran.output
    found = SWEEP_SUMMARY.search(" ".join(ran.output.split()))
    assert found, ran.output
    assert int(found.group(1)) >= 1
    with Session(engine) as session:
        row = session.get(PlanStatusRow, (tenant, enrollment_id))
        assert row is not None
        assert row.computed_at > stale_at.replace(tzinfo=row.computed_at.tzinfo)  # recomputed by the sweep


def test_the_sweep_tells_its_progress_chunk_by_chunk(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    for _ in range(3):
        _due_enrolment(client, engine, tenant, auth)
    told: list[tuple[int, int]] = []
    swept = sweep(engine, canonical_base="https://tandem.test/fhir", chunk=1, progress=lambda d, t: told.append((d, t)))
    assert swept >= 3
    assert told[0] == (0, swept)  # the bar's size, before any work
    assert told[-1] == (swept, swept)
    assert [done for done, _ in told] == sorted(done for done, _ in told)
    assert len(told) == swept + 1  # one step per chunk of one


def test_the_benchmark_run_ends_with_a_summary() -> None:
    results = {
        "seconds": 12.5,
        "databases": {
            "sqlite": {"bundle": {"rate": 1}, "create": {"rate": 2}, "load": {}, "_seconds": {"bundle": 1.0}},
            "postgres": {"bundle": {"error": "OperationalError: gone"}, "_seconds": {"bundle": 0.1}},
        },
    }
    assert summary_line(results) == (
        "done in 12.5 s: 3 benchmarks on sqlite, postgres, 1 failed: ['postgres/bundle: OperationalError: gone']"
    )
