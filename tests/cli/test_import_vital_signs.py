"""`tandem import` takes vital-sign Observations (an EHR's flowsheet rows in a Bulk Data export) through the same
intake as POST /fhir/Observation: referring to the file's own patient id, taken once however often it is run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.builders import API
from tests.cli.test_import_references import _import, _ndjson, _patient, cli_env  # noqa: F401
from tests.fhir.test_vital_signs import bp_panel, quantity, vital


def test_vital_signs_in_ndjson_are_taken_once_and_read_back(
    cli_env: None,  # noqa: F811
    tmp_path: Path,
    client: TestClient,
    tenant: str,
    auth: Callable[..., dict[str, str]],
) -> None:
    pressure = bp_panel("ehr-v1", "2026-10-01T10:15:00+00:00", 152, 96) | {"id": "bp-1"}
    pulse = vital("ehr-v1", "8867-4", "2026-10-01T10:15:00+00:00", valueQuantity=quantity(81, "/min"))
    pressure["subject"] = pulse["subject"] = {"reference": "Patient/ehr-v1"}
    wrong_unit = vital("ehr-v1", "8867-4", "2026-10-01T10:16:00+00:00", valueQuantity={"value": 81, "unit": "bpm"})
    wrong_unit["subject"] = {"reference": "Patient/ehr-v1"}
    export = _ndjson(
        tmp_path / "vitals.ndjson",
        pressure,  # its patient comes later in the file
        _patient("ehr-v1", "VIT-1"),
        pulse | {"id": "hr-1"},
        wrong_unit | {"id": "hr-2"},
    )
    first = _import(str(export), "--tenant", tenant)
    assert first.exit_code == 1, first.output  # one line refused
    assert "accepted 3 (3 created, 0 already present), refused 1" in first.output, first.output
    assert "vitals.ndjson:4" in first.output and "valueQuantity.code" in first.output
    headers = auth(tenant, "ehr-system")
    listed = client.get(f"{API}/vital-signs", headers=headers).json()["items"]
    assert sorted((v["measure"], v["systolic_mmhg"], v["heart_rate_bpm"]) for v in listed) == [
        ("blood-pressure", 152, None),
        ("heart-rate", None, 81),
    ]
    found = client.get("/fhir/Observation", params={"category": "vital-signs"}, headers=headers).json()
    assert len(found["entry"]) == 2
    again = _import(str(export), "--tenant", tenant)
    assert "accepted 3 (0 created, 3 already present), refused 1" in again.output, again.output
