"""`tandem import` takes references as senders write them (issue #19, item 7): a Bulk Data export's NDJSON, whose
references use the EHR's ids (Patient first or later in the file), `--source` naming whose ids they are,
conditional references, and collection / searchset Bundles entry by entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import col, select
from typer.testing import CliRunner, Result

from service.cli import app
from service.db.unit_of_work import unit_of_work
from service.outbox import OutboxMessage
from service.records.patient import Patient
from service.records.sync_target import SyncTarget
from service.settings import get_settings
from tests.fhir.support import patient_resource
from tests.fhir.test_facade_conformance import _phq9_response
from tests.shared_fixtures import load_fixture

EHR = "https://ehr.hospital.example/api/FHIR/R4"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.7418.2"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("TANDEM_DATABASE_URL", database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()


def _ndjson(path: Path, *resources: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
    return path


def _import(*args: str) -> Result:
    return CliRunner().invoke(app, ["import", *args])


def _patient(their_id: str, mrn: str) -> dict[str, Any]:
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    return patient_resource(id=their_id, identifier=[{"system": MRN_SYSTEM, "value": mrn, "type": mr}])


def _with_id(resource: dict[str, Any], their_id: str) -> dict[str, Any]:
    return {**resource, "id": their_id}


def _subjects(client: TestClient, headers: dict[str, str]) -> list[str]:
    found = client.get("/fhir/QuestionnaireResponse?_count=50", headers=headers).json()
    return sorted(e["resource"]["subject"]["reference"] for e in found.get("entry", []))


def _patient_ids(client: TestClient, headers: dict[str, str], mrn: str) -> list[str]:
    found = client.get(f"/fhir/Patient?identifier={MRN_SYSTEM}|{mrn}", headers=headers).json()
    return [e["resource"]["id"] for e in found.get("entry", [])]


def test_ndjson_references_use_the_files_own_ids_patient_first_or_later(
    cli_env: None, tmp_path: Path, client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    export = _ndjson(
        tmp_path / "export.ndjson",
        _with_id(_phq9_response("Patient/ehr-later"), "qr-1"),  # its patient comes two lines on
        _patient("ehr-first", "NDJ-1"),
        _patient("ehr-later", "NDJ-2"),
        _with_id(_phq9_response("Patient/ehr-first"), "qr-2"),
    )
    first = _import(str(export), "--tenant", tenant)
    assert first.exit_code == 0, first.output
    assert "accepted 4 (4 created, 0 already present), refused 0" in first.output
    headers = auth(tenant, "ehr-system")
    [first_id], [later_id] = _patient_ids(client, headers, "NDJ-1"), _patient_ids(client, headers, "NDJ-2")
    assert _subjects(client, headers) == sorted([f"Patient/{first_id}", f"Patient/{later_id}"])
    again = _import(str(export), "--tenant", tenant)
    assert "accepted 4 (0 created, 4 already present), refused 0" in again.output, again.output


def test_source_names_the_senders_namespace_across_runs_and_never_across_tenants(
    cli_env: None,
    tmp_path: Path,
    client: TestClient,
    new_tenant: Callable[[], str],
    auth: Callable[..., dict[str, str]],
) -> None:
    tenant, other = new_tenant(), new_tenant()
    patients = _ndjson(tmp_path / "Patient.ndjson", _patient("e-77", "SRC-1"))
    assert _import(str(patients), "--tenant", tenant, "--source", EHR).exit_code == 0
    assert _import(str(patients), "--tenant", other, "--source", EHR).exit_code == 0
    responses = _ndjson(tmp_path / "QuestionnaireResponse.ndjson", _with_id(_phq9_response("Patient/e-77"), "q-1"))
    # a later run: the patient is found through the source identifier Tandem keeps for that sender
    later = _import(str(responses), "--tenant", tenant, "--source", EHR + "/")
    assert later.exit_code == 0, later.output
    headers = auth(tenant, "ehr-system")
    [patient_id] = _patient_ids(client, headers, "SRC-1")
    assert _subjects(client, headers) == [f"Patient/{patient_id}"]
    patient = client.get(f"/fhir/Patient/{patient_id}", headers=headers).json()
    assert {"system": EHR, "value": "Patient/e-77"} in [
        {"system": i["system"], "value": i["value"]} for i in patient["identifier"]
    ]  # keyed as a pull from that EHR keys it
    # without --source, another run does not know the EHR's id: refused, saying what to do
    unnamed = _import(str(responses), "--tenant", tenant)
    assert unnamed.exit_code == 1
    assert "QuestionnaireResponse.ndjson:1" in unnamed.output
    assert "is not known here" in unnamed.output and "--source" in unnamed.output
    # another tenant's run never resolves to this tenant's patient (its own e-77 is its own record)
    other_headers = auth(other, "ehr-system")
    assert _import(str(responses), "--tenant", other, "--source", EHR).exit_code == 0
    [other_patient] = _patient_ids(client, other_headers, "SRC-1")
    assert other_patient != patient_id
    assert _subjects(client, other_headers) == [f"Patient/{other_patient}"]
    assert _subjects(client, headers) == [f"Patient/{patient_id}"]


def test_a_source_that_is_neither_a_target_nor_a_url_is_refused(cli_env: None, tmp_path: Path, tenant: str) -> None:
    result = _import(str(_ndjson(tmp_path / "x.ndjson", _patient("a", "X"))), "--tenant", tenant, "--source", "epic")
    assert result.exit_code == 2
    assert "neither a sync target of this tenant nor a URL" in result.output


def test_conditional_references_in_ndjson_wait_for_a_later_patient(
    cli_env: None, tmp_path: Path, client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    export = _ndjson(
        tmp_path / "cond.ndjson",
        _with_id(_phq9_response(f"Patient?identifier={MRN_SYSTEM}|COND-1"), "c-1"),
        _with_id(_phq9_response(f"Patient?identifier={MRN_SYSTEM}|NOBODY"), "c-2"),
        _with_id(_phq9_response("Patient?name=Okonkwo"), "c-3"),
        _patient("p-cond", "COND-1"),
    )
    result = _import(str(export), "--tenant", tenant)
    assert result.exit_code == 1, result.output
    assert "accepted 2 (2 created, 0 already present), refused 2" in result.output
    out = " ".join(result.output.split())  # rich wraps long lines
    assert "cond.ndjson:2: QuestionnaireResponse.subject.reference: Patient?identifier=" in out
    assert "NOBODY matches no patient; send the Patient first or check the MRN system" in out
    assert "cond.ndjson:3: QuestionnaireResponse.subject.reference:" in out and "'name' is not supported" in out
    headers = auth(tenant, "ehr-system")
    [patient_id] = _patient_ids(client, headers, "COND-1")
    assert _subjects(client, headers) == [f"Patient/{patient_id}"]


def test_a_collection_bundle_is_taken_entry_by_entry_with_a_report(
    cli_env: None, tmp_path: Path, client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"{EHR}/QuestionnaireResponse/k-1", "resource": _with_id(_phq9_response("Patient/k-p"), "k-1")},
            {"fullUrl": f"{EHR}/Patient/k-p", "resource": _patient("k-p", "COLL-1")},
            {"fullUrl": f"{EHR}/QuestionnaireResponse/k-2", "resource": _with_id(_phq9_response("Patient/k-x"), "k-2")},
            {"fullUrl": "urn:uuid:0b5b0d6e-0000-4000-8000-00000000000a"},
        ],
    }
    file = tmp_path / "collection.json"
    file.write_text(json.dumps(bundle), encoding="utf-8")
    result = _import(str(file), "--tenant", tenant)
    assert result.exit_code == 1, result.output
    assert "accepted 2 (2 created, 0 already present), refused 2" in result.output
    out = " ".join(result.output.split())
    assert "collection.json entry 2: QuestionnaireResponse.subject: patient 'Patient/k-x' is not known here" in out
    assert "collection.json entry 3: Bundle.entry[3].resource: no resource" in out
    headers = auth(tenant, "ehr-system")
    [patient_id] = _patient_ids(client, headers, "COLL-1")
    assert _subjects(client, headers) == [f"Patient/{patient_id}"]


def test_a_searchset_from_an_ehr_is_taken_and_its_outcome_entry_is_not_data(
    cli_env: None, tmp_path: Path, client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    warning = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "informational"}]}
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": _patient("s-p", "SRCH-1"), "search": {"mode": "match"}},
            {"resource": _with_id(_phq9_response("Patient/s-p"), "s-1"), "search": {"mode": "match"}},
            {"resource": warning, "search": {"mode": "outcome"}},
        ],
    }
    file = tmp_path / "searchset.json"
    file.write_text(json.dumps(bundle), encoding="utf-8")
    result = _import(str(file), "--tenant", tenant, "--source", EHR)
    assert result.exit_code == 0, result.output
    assert "accepted 2 (2 created, 0 already present), refused 0" in result.output
    headers = auth(tenant, "ehr-system")
    [patient_id] = _patient_ids(client, headers, "SRCH-1")
    assert _subjects(client, headers) == [f"Patient/{patient_id}"]


def test_a_document_bundle_is_refused_saying_which_bundles_are_taken(
    cli_env: None, tmp_path: Path, tenant: str
) -> None:
    file = tmp_path / "document.json"
    file.write_text(json.dumps({"resourceType": "Bundle", "type": "document", "entry": []}), encoding="utf-8")
    result = _import(str(file), "--tenant", tenant)
    assert result.exit_code == 1
    assert "takes batch, transaction, collection and searchset Bundles" in " ".join(result.output.split())


def test_source_may_name_a_sync_target_and_nothing_imported_from_it_is_sent_back(
    cli_env: None, tmp_path: Path, engine: Engine, tenant: str
) -> None:
    with unit_of_work(engine) as session:
        target = SyncTarget(
            tenant_id=tenant,
            name="Epic production",
            base_url=EHR,
            push=["patients", "questionnaire-responses"],
            source_system="urn:tandem:record",
            source_id=f"target-{tenant}",
        )
        session.add(target)
        session.flush()
        target_id = target.id
    export = _ndjson(
        tmp_path / "epic.ndjson", _patient("t-1", "TGT-1"), _with_id(_phq9_response("Patient/t-1"), "tq-1")
    )
    result = _import(str(export), "--tenant", tenant, "--source", "Epic production")
    assert result.exit_code == 0, result.output
    with unit_of_work(engine) as session:
        patient = session.exec(
            select(Patient).where(col(Patient.tenant_id) == tenant, col(Patient.source_id) == "Patient/t-1")
        ).one()
        assert patient.source_system == EHR  # the target's namespace, as its pull would key it
        queued = session.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.tenant_id) == tenant, col(OutboxMessage.target_id) == target_id
            )
        ).all()
        assert queued == []  # what came from the EHR is not echoed back to it


def test_a_collection_bundles_urn_uuid_references_name_its_entries_in_any_order(
    cli_env: None, tmp_path: Path, client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    patient_url = "urn:uuid:7c1e9a52-4b1d-4f0e-9a57-2d6f1b0c0001"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:7c1e9a52-4b1d-4f0e-9a57-2d6f1b0c0002", "resource": _phq9_response(patient_url)},
            {"fullUrl": patient_url, "resource": {k: v for k, v in _patient("-", "UUID-1").items() if k != "id"}},
        ],
    }
    file = tmp_path / "ips.json"
    file.write_text(json.dumps(bundle), encoding="utf-8")
    first = _import(str(file), "--tenant", tenant)
    assert first.exit_code == 0, first.output
    assert "accepted 2 (2 created, 0 already present), refused 0" in first.output
    headers = auth(tenant, "ehr-system")
    [patient_id] = _patient_ids(client, headers, "UUID-1")
    assert _subjects(client, headers) == [f"Patient/{patient_id}"]
    again = _import(str(file), "--tenant", tenant)
    assert "accepted 2 (0 created, 2 already present), refused 0" in again.output, again.output


def test_score_observations_import_through_the_one_observation_intake(
    cli_env: None, tmp_path: Path, client: TestClient, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    total = load_fixture("fhir/uscore7-Observation-PHQ9-item-example-44261-6.json")  # valueString "12"
    bad = {**total, "id": "not-a-number", "valueString": "moderate"}
    export = _ndjson(
        tmp_path / "scores.ndjson",
        _patient("ehr-obs", "OBS-1"),
        {**total, "subject": {"reference": "Patient/ehr-obs"}},
        {**bad, "subject": {"reference": "Patient/ehr-obs"}},
    )
    first = _import(str(export), "--tenant", tenant)
    assert "accepted 2 (2 created, 0 already present), refused 1" in first.output, first.output
    assert "Observation.valueString" in first.output
    headers = auth(tenant, "ehr-system")
    [patient_id] = _patient_ids(client, headers, "OBS-1")
    found = client.get(
        "/fhir/Observation", params={"patient": patient_id, "code": "http://loinc.org|44261-6"}, headers=headers
    ).json()
    assert [e["resource"]["valueInteger"] for e in found["entry"]] == [12]
    again = _import(str(export), "--tenant", tenant)
    assert "accepted 2 (0 created, 2 already present), refused 1" in again.output, again.output
