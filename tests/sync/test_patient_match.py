"""A pulled Patient is matched to the patient Tandem holds by MRN (sekmet-fhir as the EHR, both databases).

Epic types its MRN identifier only with the text "MRN" beside the OID system (no v2-0203 coding): the target's
`mrn_system` makes it the MRN all the same. Never a second patient for one MRN; the EHR's later resources that
refer to its own Patient id land on Tandem's patient.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, select

from service.intake.patient_match import patient_mrn, patients_with_mrn
from service.records.patient import Patient
from service.records.received import ReceivedResource
from service.sync.pull import pull
from service.sync.tables import RemoteResource
from tests.builders import patient_body
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.sync.sync_harness import SyncApp, pull_cache, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()

PHQ9_LOINC = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]


def _epic_patient(mrn_system: str, mrn: str) -> dict[str, Any]:
    """As Epic serves a Patient: its internal id typed "EPI" and the MRN typed only by text, under OID systems."""
    return {
        "resourceType": "Patient",
        "identifier": [
            {"use": "usual", "type": {"text": "EPI"}, "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0"}
            | {"value": f"E{uuid.uuid4().int % 10**6}"},
            {"use": "usual", "type": {"text": "MRN"}, "system": mrn_system, "value": mrn},
        ],
        "name": [{"use": "official", "family": "Matched", "given": ["Mara"]}],
        "gender": "female",
        "birthDate": "1981-04-05",
        "telecom": [{"system": "phone", "value": "608-555-0143", "use": "mobile"}],
    }


def _phq9(ehr_patient: str) -> dict[str, Any]:
    answers = ["LA6569-3"] * 8 + ["LA6568-5"]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://loinc.org/q/44249-1",
        "status": "completed",
        "subject": {"reference": f"Patient/{ehr_patient}"},
        "authored": "2026-10-06T08:30:00+01:00",
        "item": [
            {"linkId": f"/{code}", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": answer}}]}
            for code, answer in zip(PHQ9_LOINC, answers, strict=True)
        ],
    }


def _patients(sync_app: SyncApp, tenant: str) -> list[Patient]:
    with Session(sync_app.engine) as session:
        return list(session.exec(select(Patient).where(col(Patient.tenant_id) == tenant)))


def test_an_epic_mrn_typed_only_by_text_is_kept_as_the_mrn(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.840.114350.1.13.0.1.7.5.{uuid.uuid4().int % 10**8}.14"
    target = sync_app.target(tenant, sekmet.base_url, pull=["patients"], mrn_system=mrn_system)
    mrn = f"{uuid.uuid4().int % 10**9}"
    with sekmet.client() as peer:
        created = peer.post("Patient", json=_epic_patient(mrn_system, mrn))
        assert created.status_code == 201, created.text

    summary = pull(sync_app.engine, sync_app.settings, target, capability_cache=pull_cache(target, sekmet))
    assert summary.kinds["patients"].created == 1, summary
    [patient] = _patients(sync_app, tenant)
    with Session(sync_app.engine) as session:
        assert patient_mrn(session, tenant, patient.id, mrn_system) == mrn
        assert patients_with_mrn(session, tenant, mrn_system) == [(patient.id, mrn)]
    api = sync_app.driver(tenant)
    found = api.client.get("/fhir/Patient", params={"identifier": f"{mrn_system}|{mrn}"}, headers=api.headers)
    assert [e["resource"]["id"] for e in found.json().get("entry", [])] == [patient.id]


def test_a_pulled_patient_tandem_holds_by_mrn_is_that_patient(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.840.114350.1.13.0.1.7.5.{uuid.uuid4().int % 10**8}.14"
    target = sync_app.target(
        tenant, sekmet.base_url, pull=["patients", "questionnaire-responses"], mrn_system=mrn_system
    )
    mrn = f"{uuid.uuid4().int % 10**9}"
    api = sync_app.driver(tenant)
    # The hospital's interface engine sent the patient first, under its own source id.
    ours = api.create("patients", patient_body(identifiers=[{"system": mrn_system, "value": mrn}]))["id"]
    with sekmet.client() as peer:
        ehr_patient = peer.post("Patient", json=_epic_patient(mrn_system, mrn)).json()["id"]
        assert peer.post("QuestionnaireResponse", json=_phq9(ehr_patient)).status_code == 201

    summary = pull(sync_app.engine, sync_app.settings, target, capability_cache=pull_cache(target, sekmet))
    patients = summary.kinds["patients"]
    # That patient, taking the EHR's contact details (patient_links.follow_pulled_patient).
    assert (patients.created, patients.updated, patients.already_present) == (0, 1, 0), summary
    assert summary.kinds["questionnaire-responses"].created == 1, summary
    assert [p.id for p in _patients(sync_app, tenant)] == [ours]  # no second patient for the MRN
    page = api.client.get("/api/v1/questionnaire-responses", params={"patient_id": ours}, headers=api.headers)
    [response] = page.json()["items"]
    assert response["score"]["total"] == 8  # the EHR's Patient/<id> resolved to our patient
    with Session(sync_app.engine) as session:
        [link] = session.exec(select(RemoteResource).where(col(RemoteResource.record_id) == ours)).all()
    assert (link.resource_type, link.remote_id, link.target_id) == ("Patient", ehr_patient, target)
    # Provenance: the EHR's Patient and its response, kept as pulled, with the target as sender.
    with Session(sync_app.engine) as session:
        kept = session.exec(select(ReceivedResource).where(col(ReceivedResource.tenant_id) == tenant)).all()
    assert sorted((r.resource_type, r.record_id == ours) for r in kept) == [
        ("Patient", True),
        ("QuestionnaireResponse", False),
    ]
    assert {(r.source_system, r.sender) for r in kept} == {(sekmet.base_url, f"sync:{target}")}
    assert next(r for r in kept if r.resource_type == "Patient").resource["id"] == ehr_patient

    again = pull(sync_app.engine, sync_app.settings, target, capability_cache=pull_cache(target, sekmet))
    assert again.kinds["patients"].created == 0 and again.kinds["questionnaire-responses"].created == 0, again
    assert again.kinds["patients"].updated == 0, again  # nothing changed at the EHR since
    assert len(_patients(sync_app, tenant)) == 1
