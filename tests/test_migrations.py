"""The schema is made only by migrations: they upgrade, downgrade and upgrade again on both databases,
and the models agree with them (alembic check)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from service.db import migrations
from service.db.engine import make_engine
from service.records.base import metadata
from tests.conftest import create_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    url, drop = create_postgres_database()
    try:
        yield url
    finally:
        drop()


def _tables(url: str) -> set[str]:
    engine = make_engine(url, pool_size=1)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    assert _tables(empty_database) == set(metadata.tables)
    command.check(migrations.alembic_config(empty_database))  # raises if models and migrations disagree
    migrations.downgrade(empty_database, "base")
    assert _tables(empty_database) == set()
    migrations.upgrade(empty_database)
    assert _tables(empty_database) == set(metadata.tables)


def test_revision_files_are_date_prefixed() -> None:
    versions = Path(__file__).resolve().parent.parent / "migrations" / "versions"
    names = [p.name for p in versions.glob("*.py")]
    assert names
    assert all(name[:4].isdigit() and name[4] == "_" for name in names), names


def test_the_app_never_creates_tables_itself() -> None:
    service_dir = Path(__file__).resolve().parent.parent / "service"
    offenders = [p for p in service_dir.rglob("*.py") if "create_all(" in p.read_text(encoding="utf-8")]
    assert offenders == []
