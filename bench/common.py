"""Shared pieces of the benchmarks: databases, the API server in a subprocess, timing and the machine."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from service.auth.tokens import mint_dev_token
from service.db import migrations
from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.settings import Settings
from service.tenants import register_tenant
from tests.conftest import create_postgres_database, make_settings
from tests.ehr_peer.sekmet_server import SekmetServer, start_sekmet

ROOT = Path(__file__).resolve().parent.parent
# Every run generates the same records: the seeded demo generator at a fixed moment, the end of 2026-11-01 (so
# every event of that day has happened, as in the runs before the generator knew the time of day).
ANCHOR_END = datetime(2026, 11, 1, 23, 59, 59, tzinfo=UTC)
SEED = 7
# A 1,000-entry Bundle is ~2 MB of JSON; the default 1 MB body limit is raised for the benchmark server only.
BENCH_OVERRIDES: dict[str, object] = {
    "max_body_bytes": 16 * 1024 * 1024,
    # the push benchmark talks to sekmet-fhir on loopback over plain HTTP
    "sync_allowed_hosts": ["127.0.0.1"],
    "sync_require_https": False,
}


@dataclass
class Database:
    kind: str  # sqlite | postgres
    url: str
    drop: Callable[[], None]
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url, pool_size=4)

    def settings(self) -> Settings:
        return make_settings(self.url, **BENCH_OVERRIDES)

    def tenant(self, prefix: str = "bench") -> str:
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        with unit_of_work(self.engine) as session:
            register_tenant(session, tenant_id=tenant_id, name=f"Benchmark {tenant_id}")
        return tenant_id

    def token(self, tenant_id: str, role: str = "ehr-system") -> str:
        return mint_dev_token(self.settings(), tenant=tenant_id, role=role)  # type: ignore[arg-type]

    def close(self) -> None:
        self.engine.dispose()
        self.drop()


@contextlib.contextmanager
def database(kind: str) -> Iterator[Database]:
    """A fresh, migrated throwaway database (a temp SQLite file, or a new database on the PostgreSQL server)."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="tandem-bench-")
        url = f"sqlite:///{folder}/bench.db"

        def drop() -> None:
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
            os.rmdir(folder)

    else:
        url, drop = create_postgres_database()
    migrations.upgrade(url)
    db = Database(kind, url, drop)
    try:
        yield db
    finally:
        db.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]

    def rss_kb(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the server process, in kB, from /proc."""
        values = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    values[name] = int(rest.split()[0])
        return values.get("VmRSS", 0), values.get("VmHWM", 0)


@contextlib.contextmanager
def api_server(db: Database, workers: int = 1) -> Iterator[Server]:
    """The real app under uvicorn (one worker unless asked, no access log) in its own process, as `make run` serves
    it; with workers > 1 as production on PostgreSQL runs it (WEB_CONCURRENCY)."""
    port = free_port()
    command = [sys.executable, "-m", "bench.server", "--database-url", db.url, "--port", str(port)]
    command += ["--workers", str(workers)]
    process = subprocess.Popen(command, cwd=ROOT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError("the benchmark server exited at start")
            try:
                if httpx.get(f"{base_url}/fhir/metadata", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start within 30 s")
            time.sleep(0.1)
        yield Server(base_url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def sekmet_server() -> Iterator[SekmetServer]:
    """sekmet-fhir (a third party's FHIR R4 server on its own SQLite file) on loopback, as the test suite starts
    it (`tests/ehr_peer/sekmet_server.py: start_sekmet`: strict structural validation with fhir.resources R4B,
    one uvicorn worker, no auth): the peer the write benchmarks are measured beside. Its traffic log (every
    request and response body stored in its database, a debugging aid) is off, as sekmet's settings advise for
    load runs: the peer only parses, validates, stores and indexes, as issue #18 describes it (with the log on,
    it creates ~35 % fewer Patients a second)."""
    quiet = {"log_inbound": False}
    with (
        tempfile.TemporaryDirectory(prefix="bench-sekmet-") as work,
        start_sekmet(work, extra_settings=quiet) as server,
    ):
        yield server


def literal_references(node: Any) -> set[str]:
    """Every relative literal reference (`Type/id`) in a resource tree."""
    found: set[str] = set()
    if isinstance(node, dict):
        reference = node.get("reference")
        if isinstance(reference, str) and reference.count("/") == 1 and ":" not in reference:
            found.add(reference)
        for value in node.values():
            found |= literal_references(value)
    elif isinstance(node, list):
        for value in node:
            found |= literal_references(value)
    return found


def copy_to_peer(tandem: httpx.Client, peer: httpx.Client, references: set[str]) -> None:
    """Setup for a peer: each referenced resource as Tandem serves it, PUT to the peer under the same id (FHIR
    update-as-create), so the peer's copy of the same entries points at resources that exist there too."""
    for reference in sorted(references):
        answer = tandem.get(f"/fhir/{reference}")
        answer.raise_for_status()
        resource = {k: v for k, v in answer.json().items() if k != "meta"}
        put = peer.put(f"/{reference}", content=json.dumps(resource))
        assert put.status_code in (200, 201), (reference, put.status_code, put.text[:500])


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    memory = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        kb = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    versions: dict[str, str] = {"python": platform.python_version()}
    from importlib.metadata import PackageNotFoundError, version

    for package in ("fastapi", "uvicorn", "sqlalchemy", "pydantic", "psycopg", "fhir.resources", "sekmet-fhir"):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    with contextlib.suppress(Exception):
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tAc", "show server_version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if out.returncode == 0:
            versions["postgresql"] = out.stdout.strip()
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    return {
        "cores": os.cpu_count(),
        "memory": memory,
        "cpu": cpu,
        "platform": platform.platform(),
        "versions": versions,
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
