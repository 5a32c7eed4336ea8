"""Shared pieces of the fault tests: a throwaway PostgreSQL database, an app with observability installed, and an
admin connection that takes the database away (terminates its backends, refuses new connections) and back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from service.app import create_app
from service.db.unit_of_work import unit_of_work
from service.observability import install_observability
from service.settings import Settings
from service.tenants import register_tenant
from tests.conftest import create_postgres_database, postgres_admin_url
from tests.db_snapshot import database_checksum

METRICS_TOKEN = "reliability-metrics-token"


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    from service.db import migrations

    url, drop = create_postgres_database()
    try:
        migrations.upgrade(url)
        yield url
    finally:
        drop()


def observed_app(settings: Settings) -> FastAPI:
    """create_app plus install_observability, unless service/app.py already wires it."""
    app = create_app(settings)
    if not hasattr(app.state, "metrics_registry"):
        install_observability(app)
    app.state.metrics_token = METRICS_TOKEN
    return app


def register(engine: Engine, tenant_id: str) -> str:
    with unit_of_work(engine) as session:
        register_tenant(session, tenant_id=tenant_id, name=f"Reliability {tenant_id}")
    return tenant_id


class DatabaseSwitch:
    """Takes one database away from its clients (as a failover or a restart would) and gives it back."""

    def __init__(self, database_url: str) -> None:
        self.name = make_url(database_url).database
        self.admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT", pool_size=1)
        self.faults = 0

    def terminate_backends(self) -> int:
        with self.admin.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            ).scalar_one()
        self.faults += 1
        return int(killed)

    def refuse_connections(self, refuse: bool) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {"false" if refuse else "true"}'))

    def outage(self, seconds: float) -> int:
        """Refuse new connections, kill the open ones, wait, allow again; returns backends terminated."""
        self.refuse_connections(True)
        try:
            killed = self.terminate_backends()
            time.sleep(seconds)
        finally:
            self.refuse_connections(False)
        return killed

    def close(self) -> None:
        self.admin.dispose()


def checksum(engine: Engine) -> str:
    return database_checksum(engine, exclude={"audit_events"})
