"""`tandem import`: NDJSON and Bundles through the facade's path; refusals are reported and stop nothing;
re-running the same files adds nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.cli import app
from service.settings import get_settings
from tests.fhir.support import patient_resource
from tests.fhir.test_facade_conformance import _phq9_response


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()


def test_ndjson_import_reports_refusals_and_is_idempotent(
    cli_env: None, tmp_path: Path, client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    # Keyed by the file's Type/id: an MRN names the patient, not the sender's record.
    good = patient_resource(id="ehr-17")
    lines = [
        json.dumps(good),
        json.dumps(_phq9_response("Patient/not-imported-yet")),
        "{ this is not json",
        json.dumps({"resourceType": "Spaceship"}),
        json.dumps(patient_resource(id="ehr-18")),
    ]
    file = tmp_path / "export.ndjson"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = CliRunner().invoke(app, ["import", str(file), "--tenant", tenant])
    assert first.exit_code == 1, first.output
    assert "accepted 2 (2 created, 0 already present), refused 3" in first.output
    assert "export.ndjson:3: not JSON" in first.output
    assert "export.ndjson:4" in first.output
    again = CliRunner().invoke(app, ["import", str(file), "--tenant", tenant])
    assert "accepted 2 (0 created, 2 already present), refused 3" in again.output
    patients = client.get("/fhir/Patient", headers=auth(tenant, "ehr-system")).json()
    assert patients["total"] == 2


def test_bundle_import(cli_env: None, tmp_path: Path, tenant: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:5d6e7f80-0000-4000-8000-000000000001",
                "resource": patient_resource(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:5d6e7f80-0000-4000-8000-000000000002",
                "resource": _phq9_response("urn:uuid:5d6e7f80-0000-4000-8000-000000000001"),
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ],
    }
    file = tmp_path / "bundle.json"
    file.write_text(json.dumps(bundle), encoding="utf-8")
    first = CliRunner().invoke(app, ["import", str(file), "--tenant", tenant])
    assert first.exit_code == 0, first.output
    assert "accepted 2 (2 created, 0 already present), refused 0" in first.output
    again = CliRunner().invoke(app, ["import", str(file), "--tenant", tenant])
    assert "accepted 2 (0 created, 2 already present), refused 0" in again.output


def test_unknown_tenant_is_refused_with_what_to_do(cli_env: None, tmp_path: Path) -> None:
    file = tmp_path / "x.ndjson"
    file.write_text("{}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(file), "--tenant", "nobody-here"])
    assert result.exit_code == 2
    assert "tandem tenant add" in result.output
