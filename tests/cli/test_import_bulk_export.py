"""A real Bulk Data export, from sekmet-fhir as the EHR, imported with `--source` (issue #19, item 7).

The EHR's NDJSON names its patients by its own ids (`Encounter.subject = Patient/<sekmet's id>`); Tandem has
never seen those ids. Imported with the files in the "wrong" order (encounters before patients), every reference
resolves to the patient Tandem created from the export, keyed by the EHR's base URL as a pull from it would be.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.cli import app
from service.settings import get_settings
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture

sekmet = sekmet_fixture()
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.7418.2"
SNOMED = "http://snomed.info/sct"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()


def _cbt_visit(patient_id: str, day: int) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        # SNOMED CT 228557008 "Cognitive and behavioral therapy" (CLINICAL.md §1)
        "type": [{"coding": [{"system": SNOMED, "code": "228557008"}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": f"2026-10-{day:02d}T09:00:00+00:00", "end": f"2026-10-{day:02d}T09:50:00+00:00"},
    }


def _export(ehr: SekmetServer, group_id: str, tmp_path: Path) -> dict[str, Path]:
    """Group/$export as a Bulk Data client runs it: kick-off, poll the status (Retry-After), download."""
    with ehr.client() as http:
        kickoff = http.get(
            f"Group/{group_id}/$export",
            params={"_type": "Patient,Encounter"},
            headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
        )
        assert kickoff.status_code == 202, kickoff.text
        status_url = kickoff.headers["Content-Location"]
        for _ in range(60):
            status = http.get(status_url)
            if status.status_code == 200:
                break
            assert status.status_code == 202, status.text
            time.sleep(float(status.headers.get("Retry-After", "1")))
        manifest = status.json()
        files = {}
        for output in manifest["output"]:
            path = tmp_path / f"{output['type']}.ndjson"
            path.write_bytes(http.get(output["url"]).content)
            files[output["type"]] = path
    return files


def test_a_sekmet_bulk_export_imports_with_the_ehrs_ids_in_any_file_order(
    cli_env: None,
    sekmet: SekmetServer,
    tmp_path: Path,
    client: TestClient,
    tenant: str,
    auth: Callable[..., dict[str, str]],
) -> None:
    mrn = f"BULK-{uuid.uuid4().hex[:8]}"
    with sekmet.client() as http:
        patient = {
            "resourceType": "Patient",
            "identifier": [
                {
                    "system": MRN_SYSTEM,
                    "value": mrn,
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                }
            ],
            "name": [{"family": "Exported", "given": ["Nora"]}],
            "gender": "female",
            "birthDate": "1984-02-29",
        }
        ehr_patient = http.post("Patient", json=patient).json()["id"]
        for day in (5, 12):
            assert http.post("Encounter", json=_cbt_visit(ehr_patient, day)).status_code == 201
        group = {"resourceType": "Group", "type": "person", "actual": True,
                 "member": [{"entity": {"reference": f"Patient/{ehr_patient}"}}]}  # fmt: skip
        group_id = http.post("Group", json=group).json()["id"]
    files = _export(sekmet, group_id, tmp_path)
    assert set(files) == {"Patient", "Encounter"}

    args = ["import", str(files["Encounter"]), str(files["Patient"]), "--tenant", tenant, "--source", sekmet.base_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "accepted 3 (3 created, 0 already present), refused 0" in result.output

    headers = auth(tenant, "ehr-system")
    found = client.get(f"/fhir/Patient?identifier={MRN_SYSTEM}|{mrn}", headers=headers).json()
    [ours] = [e["resource"] for e in found["entry"]]
    assert {"system": sekmet.base_url, "value": f"Patient/{ehr_patient}"} in [
        {"system": i["system"], "value": i["value"]} for i in ours["identifier"]
    ]
    visits = client.get(f"/fhir/Encounter?subject=Patient/{ours['id']}", headers=headers).json()
    assert visits["total"] == 2
    again = CliRunner().invoke(app, args)
    assert "accepted 3 (0 created, 3 already present), refused 0" in again.output, again.output
