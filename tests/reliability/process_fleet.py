"""Real service processes for the process-fault test: `uvicorn service.main:app` API processes and `tandem sync
worker` processes on one database, each in its own process group with its output in a log file, SIGKILLed and
restarted on demand, and all of them killed at the end whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET, project_root
from tests.ehr_peer.sekmet_server import free_port

VENV_BIN = Path(sys.executable).parent
TANDEM = str(VENV_BIN / "tandem")
# The shortest lease the CLI accepts: a SIGKILLed worker's rows are due again this long after its last renewal.
LEASE_SECONDS = 5


def service_env(database_url: str) -> dict[str, str]:
    """The same settings for every process (the service reads TANDEM_* only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return env | {
        "TANDEM_DATABASE_URL": database_url,
        "TANDEM_ENVIRONMENT": "test",
        "TANDEM_DEV_TOKEN_SECRET": TEST_SECRET,
        "TANDEM_RATE_LIMIT_PER_MINUTE": "0",
        "TANDEM_DATABASE_POOL_SIZE": "4",
        # The EHR peer (sekmet) listens on plain http on loopback.
        "TANDEM_SYNC_ALLOWED_HOSTS": json.dumps(["127.0.0.1"]),
        "TANDEM_SYNC_REQUIRE_HTTPS": "false",
        "PYTHONPATH": str(project_root()),
    }


@dataclass
class Proc:
    name: str
    role: str  # "api" or "worker"
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None
    killed: bool = False

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Fleet:
    database_url: str
    logs: Path
    started: list[Proc] = field(default_factory=list)
    _counter: int = 0

    def _spawn(
        self, role: str, name: str, argv: list[str], port: int | None = None, env: dict[str, str] | None = None
    ) -> Proc:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                cwd=project_root(),
                env=service_env(self.database_url) | (env or {}),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches it and only it
            )
        proc = Proc(name, role, popen, log, port)
        self.started.append(proc)
        return proc

    def api(
        self, name: str, port: int | None = None, *, log_level: str = "warning", env: dict[str, str] | None = None
    ) -> Proc:
        port = port or free_port()
        argv = [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(port)]
        return self._spawn("api", name, [*argv, "--no-access-log", "--log-level", log_level], port, env)

    def worker(
        self, *, lease_seconds: int = LEASE_SECONDS, batch: int = 5, processes: int = 1, one_by_one: bool = False
    ) -> Proc:
        self._counter += 1
        argv = [TANDEM, "sync", "worker", "--lease-seconds", str(lease_seconds), "--batch", str(batch)]
        argv += ["--one-by-one"] if one_by_one else []
        return self._spawn("worker", f"worker-{self._counter}", [*argv, "--processes", str(processes)])

    def running(self, role: str) -> list[Proc]:
        return [p for p in self.started if p.role == role and not p.killed and p.alive]

    def sigkill(self, proc: Proc) -> None:
        proc.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(30)

    def kill_all(self) -> None:
        for proc in self.started:
            # Whether or not the leader is still alive: its group may have outlived it (an orphaned child).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
        for proc in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(30)

    def died_unasked(self) -> list[str]:
        """Processes that exited although nobody killed them."""
        return [f"{p.name} (exit {p.popen.returncode})" for p in self.started if not p.killed and not p.alive]

    def log_tails(self, lines: int = 15) -> str:
        parts = []
        for proc in self.started:
            text = proc.log.read_text(errors="replace").splitlines() if proc.log.exists() else []
            parts.append(f"--- {proc.name} ({'killed' if proc.killed else 'alive' if proc.alive else 'exited'})")
            parts += text[-lines:]
        return "\n".join(parts)


def wait_until_serving(base_url: str, proc: Proc, timeout: float = 90) -> None:
    """/healthz answers (startup on a loaded 2-core machine takes a few seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer /healthz within {timeout} s; see {proc.log}")
