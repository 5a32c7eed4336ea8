"""`tandem import` enrols through the referral intake too: a Bulk Data-style NDJSON of a Patient and its referral
ServiceRequest (the EHR's ids) makes the enrolment; a proposal is refused naming the element; a re-run adds
nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from service.settings import get_settings
from tests.builders import API
from tests.cli.test_import_references import MRN_SYSTEM, _import, _ndjson, _patient, cli_env

__all__ = ["cli_env"]


def test_an_imported_referral_enrols_its_patient_and_a_proposal_is_refused(
    cli_env: None, tmp_path: Path, client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    protocol = f"{get_settings().canonical_base}/protocol/esketamine-cbt"
    referral = {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "active",
        "intent": "order",
        "instantiatesUri": [protocol],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "306343005"}]},
        "subject": {"reference": "Patient/ehr-ref-1"},
        "authoredOn": "2026-11-20",
    }
    export = _ndjson(
        tmp_path / "referrals.ndjson",
        {**referral, "id": "sr-2", "intent": "proposal"},
        referral,  # its patient comes a line later
        _patient("ehr-ref-1", "REF-1"),
    )
    first = _import(str(export), "--tenant", tenant)
    assert first.exit_code == 1, first.output  # something was refused
    assert "accepted 2 (2 created, 0 already present), refused 1" in first.output, first.output
    assert "ServiceRequest.intent" in first.output
    headers = auth(tenant, "ehr-system")
    found = client.get(f"/fhir/Patient?identifier={MRN_SYSTEM}|REF-1", headers=headers).json()
    [patient_id] = [e["resource"]["id"] for e in found["entry"]]
    enrollments = client.get(f"{API}/enrollments", headers=headers).json()["items"]
    assert [(e["protocol_id"], e["start_date"], e["status"]) for e in enrollments] == [
        ("esketamine-cbt", "2026-11-20", "active")
    ]
    assert enrollments[0]["patient_id"] == patient_id
    again = _import(str(export), "--tenant", tenant)
    assert "accepted 2 (0 created, 2 already present), refused 1" in again.output, again.output
