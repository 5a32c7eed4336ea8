"""A SMART-enabled EHR on loopback (ehr_server.py) and a Tandem that may reach it, on each database.

Tandem runs in a TestClient at https://testserver (the embedded session cookie is Secure); the EHR under uvicorn.
`walk` is the browser: it follows each redirect to whichever of the two the Location names.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.auth.tokens import mint_dev_token
from service.cli import app as cli
from service.db.unit_of_work import unit_of_work
from service.settings import Settings, get_settings
from service.tenants import register_tenant
from tests.builders import ApiDriver
from tests.conftest import make_settings
from tests.live_server import serve
from tests.smart_launch.ehr_server import Ehr, EhrServer

TANDEM = "https://testserver"
CALLBACK = f"{TANDEM}/smart/callback"
CLIENT_ID = "tandem-app"
EHR_ORIGIN = "https://ehr-frame.example.org"
MRN_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"


@pytest.fixture(scope="module")
def ehr_server() -> Iterator[EhrServer]:
    server = EhrServer()
    with serve(server.app) as url:
        server.base = url
        yield server


@pytest.fixture(scope="module")
def smart_settings(database_url: str) -> Settings:
    # The test EHR listens on plain http on loopback: allowed here, as an operator allows a hospital-network host.
    return make_settings(database_url, sync_allowed_hosts=["127.0.0.1"], sync_require_https=False)


@pytest.fixture(scope="module")
def tandem(smart_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(smart_settings), base_url=TANDEM, raise_server_exceptions=False) as client:
        yield client


@dataclass
class Hospital:
    tenant: str
    ehr: Ehr
    patient_id: str
    mrn: str
    api: ApiDriver


def register_with_cli(monkeypatch: pytest.MonkeyPatch, database_url: str, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    monkeypatch.setenv("TANDEM_SYNC_ALLOWED_HOSTS", json.dumps(["127.0.0.1"]))
    monkeypatch.setenv("TANDEM_SYNC_REQUIRE_HTTPS", "false")
    get_settings.cache_clear()
    try:
        ran = CliRunner().invoke(cli, ["smart", "register", *args])
    finally:
        get_settings.cache_clear()
    return ran.exit_code, " ".join(ran.output.split())


def new_hospital(
    tandem: TestClient,
    settings: Settings,
    ehr_server: EhrServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    roles: tuple[str, ...] = ("Practitioner=clinician",),
) -> Hospital:
    """A tenant with one patient (MRN under the EHR's system), and its EHR registered with `tandem smart register`."""
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    with unit_of_work(tandem.app.state.engine) as session:  # type: ignore[attr-defined]
        register_tenant(session, tenant_id=tenant, name=f"Hospital {tenant}")
    api = ApiDriver(tandem, {"Authorization": f"Bearer {mint_dev_token(settings, tenant=tenant, role='ehr-system')}"})
    mrn = f"E{uuid.uuid4().hex[:8]}"
    patient_id = api.patient(identifiers=[{"system": MRN_SYSTEM, "value": mrn}], family_name="Okonkwo")
    ehr = ehr_server.add(f"ehr-{tenant}", client_id=CLIENT_ID, redirect_uri=CALLBACK)
    role_options = [option for rule in roles for option in ("--role", rule)]
    code, said = register_with_cli(
        monkeypatch,
        settings.database_url,
        tenant,
        ehr.iss,
        "--client-id",
        CLIENT_ID,
        "--redirect-uri",
        CALLBACK,
        "--frame-origin",
        EHR_ORIGIN,
        *role_options,
    )
    assert code == 0, said
    tandem.cookies.clear()
    return Hospital(tenant, ehr, patient_id, mrn, api)


def ehr_patient(patient_id: str, mrn: str) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"use": "usual", "type": {"text": "MRN"}, "system": MRN_SYSTEM, "value": mrn}],
        "name": [{"family": "Okonkwo", "given": ["Ada"]}],
    }


def walk(tandem: TestClient, url: str, *, hops: int = 6) -> list[httpx.Response]:
    """The browser: GET url, then each Location, at Tandem or at the EHR, until an answer that is not a redirect."""
    answers: list[httpx.Response] = []
    with httpx.Client(timeout=10) as elsewhere:
        for _ in range(hops):
            at_tandem = url.startswith(("/", TANDEM))
            answer = (tandem if at_tandem else elsewhere).get(url, follow_redirects=False)
            answers.append(answer)
            if answer.status_code not in (301, 302, 303, 307) or "location" not in answer.headers:
                break
            url = answer.headers["location"]
    return answers
