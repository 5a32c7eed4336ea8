"""Run sekmet-fhir (a FHIR R4 test server) as a subprocess on 127.0.0.1, open or behind SMART Backend Services.

    with start_sekmet(tmp_path) as ehr:                       # open: no auth
        httpx.get(f"{ehr.base_url}/metadata")
    with start_sekmet(tmp_path, smart=True) as ehr:           # SMART Backend Services (private_key_jwt, RS384)
        token = ehr.smart_client.request_token()["access_token"]

    sekmet = sekmet_fixture()                                 # in a test module: a module-scoped fixture
    sekmet_smart = sekmet_fixture(smart=True)

sekmet is configured through a YAML settings file (`sekmet serve -c settings.yaml`; see sekmet/config.py): we always
set `host: 127.0.0.1` (its default is 0.0.0.0) and pass `--host 127.0.0.1` too, disable the workflow simulator, and
keep its SQLite database and keys in a temporary directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

VENV_BIN = Path(sys.executable).parent
SEKMET = str(VENV_BIN / "sekmet") if (VENV_BIN / "sekmet").exists() else (shutil.which("sekmet") or "sekmet")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- SMART Backend Services client


@dataclass
class SmartClient:
    """A SMART Backend Services client registered at the server: its id, RS384 key pair and the token endpoint."""

    client_id: str
    private_key: rsa.RSAPrivateKey
    kid: str
    token_url: str = ""
    scope: str = "system/*.*"
    alg: str = "RS384"

    @classmethod
    def generate(cls, client_id: str = "tandem-sync", scope: str = "system/*.*") -> SmartClient:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(client_id=client_id, private_key=key, kid=f"kid-{uuid.uuid4().hex[:12]}", scope=scope)

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"alg": self.alg, "use": "sig", "kid": self.kid, "key_ops": ["verify"]})
        return jwk

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    @property
    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def client_assertion(self, audience: str | None = None, lifetime: int = 240) -> str:
        """A signed JWT for `client_assertion` (iss = sub = client_id, aud = token URL, exp <= 5 min, unique jti)."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience or self.token_url,
            "exp": now + lifetime,
            "jti": secrets.token_hex(16),
        }
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers={"kid": self.kid, "typ": "JWT"})

    def token_request_form(self, scope: str | None = None, assertion: str | None = None) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "scope": scope or self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.client_assertion(),
        }

    def request_token(self, scope: str | None = None) -> dict[str, Any]:
        """client_credentials + private_key_jwt; returns the token response (raises on an OAuth error)."""
        response = httpx.post(self.token_url, data=self.token_request_form(scope), timeout=10)
        response.raise_for_status()
        return dict(response.json())


# ---------------------------------------------------------------- the server


@dataclass
class SekmetServer:
    """A running sekmet-fhir. `base_url` is the FHIR base (…/fhir); `root_url` the server root."""

    root_url: str
    base_url: str
    port: int
    workdir: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    smart_client: SmartClient | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def auth_mode(self) -> str:
        return "smart" if self.smart_client else "open"

    @property
    def token_url(self) -> str | None:
        return self.smart_client.token_url if self.smart_client else None

    @property
    def smart_configuration_url(self) -> str:
        return f"{self.base_url}/.well-known/smart-configuration"

    def token(self, scope: str | None = None) -> str | None:
        """A fresh access token (SMART mode), or None in open mode."""
        return self.smart_client.request_token(scope)["access_token"] if self.smart_client else None

    def auth_headers(self, scope: str | None = None) -> dict[str, str]:
        token = self.token(scope)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def client(self, scope: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client on the FHIR base, already authorised in SMART mode."""
        headers = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
        headers.update(self.auth_headers(scope))
        headers.update(kwargs.pop("headers", {}))
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs)

    def metadata(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/metadata", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def reset(self) -> None:
        """Delete every resource (and sekmet's traffic log) through `sekmet reset --yes`; keys and tokens survive."""
        run = subprocess.run(
            [SEKMET, "reset", "--yes", "-c", str(self.config_path)],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(f"sekmet reset failed ({run.returncode}): {run.stdout}{run.stderr}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def sekmet_settings(port: int, workdir: Path, smart_client: SmartClient | None = None) -> dict[str, Any]:
    root = f"http://{LOOPBACK}:{port}"
    settings: dict[str, Any] = {
        "base_url": f"{root}/fhir",  # also the `aud` of the access tokens sekmet issues
        "host": LOOPBACK,
        "port": port,
        "data_dir": str(workdir / "data"),
        "own_private_key_path": str(workdir / "keys" / "sekmet_private.pem"),
        "simulator": {"enabled": False},
        "validation": {"inbound": "strict"},
        "server_auth": {"types": ["none"]},
    }
    if smart_client:
        settings["server_auth"] = {
            "types": ["smart"],
            "smart_clients": [{"client_id": smart_client.client_id, "jwks": smart_client.jwks, "scopes": "system/*.*"}],
            "token_lifetime": 3600,
            "enforce_scopes": True,
        }
    return settings


@contextmanager
def start_sekmet(
    workdir: Path | str | None = None,
    *,
    smart: bool = False,
    client_id: str = "tandem-sync",
    extra_settings: dict[str, Any] | None = None,
    startup_timeout: float = 30,
) -> Iterator[SekmetServer]:
    """Start sekmet-fhir on a free loopback port; yields a SekmetServer; terminates (then kills) it at exit.

    With smart=True the FHIR API requires a SMART Backend Services token: an RS384 key pair is generated, its
    public JWKS registered as client `client_id`, and `server.smart_client` can sign assertions / fetch tokens.
    """
    with tempfile.TemporaryDirectory(prefix="sekmet-") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        root = f"http://{LOOPBACK}:{port}"
        client = SmartClient.generate(client_id) if smart else None
        if client:
            client.token_url = f"{root}/auth/token"
        settings = sekmet_settings(port, work, client)
        settings.update(extra_settings or {})
        if settings.get("host") != LOOPBACK:
            raise ValueError("sekmet must bind 127.0.0.1 only")
        config_path = work / "settings.yaml"
        config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
        log_path = work / "sekmet.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
        env["SEKMET_CONFIG"] = str(config_path)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [SEKMET, "serve", "-c", str(config_path), "--host", LOOPBACK, "--port", str(port)],
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        server = SekmetServer(
            root_url=root,
            base_url=f"{root}/fhir",
            port=port,
            workdir=work,
            config_path=config_path,
            log_path=log_path,
            process=process,
            smart_client=client,
            settings=settings,
        )
        try:
            _wait_until_up(server, startup_timeout)
            try:
                yield server
            except BaseException:
                print(f"--- sekmet log tail ({log_path}) ---\n{server.log_tail()}", file=sys.stderr)
                raise
        finally:
            _stop(process)


def _wait_until_up(server: SekmetServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"sekmet exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/metadata", timeout=2).status_code == 200:
                return
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.05)
    raise RuntimeError(f"sekmet did not answer /fhir/metadata within {timeout} s ({last}):\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


FixtureScope = Literal["session", "package", "module", "class", "function"]


def sekmet_fixture(*, smart: bool = False, scope: FixtureScope = "module", **kwargs: Any) -> Callable[..., Any]:
    """A pytest fixture (default: one sekmet per module) yielding a SekmetServer."""

    @pytest.fixture(scope=scope)
    def _sekmet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SekmetServer]:
        with start_sekmet(tmp_path_factory.mktemp("sekmet"), smart=smart, **kwargs) as server:
            yield server

    return _sekmet


# ---------------------------------------------------------------- sekmet's conformance_smoke scenario


@dataclass
class ScenarioOutcome:
    """Result of one sekmet scenario run against a peer; counts are per step status."""

    scenario: str
    status: str  # passed | warning | failed | error | skipped
    passed: int
    failed: int
    warnings: int
    skipped: int
    errors: int
    exit_code: int
    steps: list[dict[str, Any]]
    output: str

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errors == 0 and self.exit_code == 0

    def failures(self) -> list[str]:
        return [f"{s['name']}: {s['message'][:300]}" for s in self.steps if s["status"] in ("failed", "error")]


def run_scenario(
    scenario: str,
    base_url: str,
    token: str | None = None,
    *,
    workdir: Path | str | None = None,
    timeout: float = 120,
    variables: dict[str, str] | None = None,
) -> ScenarioOutcome:
    """Run a sekmet scenario against an external FHIR base (optionally with a bearer token).

    Equivalent to: `sekmet scenario run <scenario> --peer target --no-serve -c settings.yaml` where settings.yaml
    declares `peers.target = {base_url, auth: {type: bearer, token}}`. `--no-serve` matters: without it sekmet
    starts an embedded server of its own when its (unused) base_url is not up.
    """
    with tempfile.TemporaryDirectory(prefix="sekmet-scenario-") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        own_port = free_port()
        peer: dict[str, Any] = {"base_url": base_url.rstrip("/"), "timeout": 30}
        if token:
            peer["auth"] = {"type": "bearer", "token": token}
        settings = {
            "base_url": f"http://{LOOPBACK}:{own_port}/fhir",
            "host": LOOPBACK,
            "port": own_port,
            "data_dir": str(work / "data"),
            "own_private_key_path": str(work / "keys" / "sekmet_private.pem"),
            "simulator": {"enabled": False},
            "peers": {"target": peer},
        }
        config_path = work / "runner.yaml"
        config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
        command = [SEKMET, "scenario", "run", scenario, "--peer", "target", "--no-serve"]
        command += ["--report-dir", str(work / "reports"), "-c", str(config_path)]
        for name, value in (variables or {}).items():
            command += ["--var", f"{name}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
        env["NO_COLOR"] = "1"
        run = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        output = run.stdout + run.stderr
        reports = sorted((work / "reports").glob("*/results.json"))
        if not reports:
            raise RuntimeError(f"sekmet scenario run wrote no report (exit {run.returncode}):\n{output[-3000:]}")
        results = json.loads(reports[-1].read_text())
        if len(results) != 1:
            raise RuntimeError(f"expected one scenario result, got {len(results)}:\n{output[-3000:]}")
        result = results[0]
        counts = result.get("counts", {})
        return ScenarioOutcome(
            scenario=scenario,
            status=result["status"],
            passed=counts.get("passed", 0),
            failed=counts.get("failed", 0),
            warnings=counts.get("warning", 0),
            skipped=counts.get("skipped", 0),
            errors=counts.get("error", 0),
            exit_code=run.returncode,
            steps=result["steps"],
            output=output,
        )


def run_conformance_smoke(base_url: str, token: str | None = None, **kwargs: Any) -> ScenarioOutcome:
    """sekmet's built-in `conformance_smoke` scenario against `base_url`; see run_scenario."""
    return run_scenario("conformance_smoke", base_url, token, **kwargs)
