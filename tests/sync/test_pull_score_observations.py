"""The pull takes score Observations through the one Observation intake (it once mapped a total to linkId
/44261-6, which scoring refused: 0 of 6 imported), with the target's code map read inbound."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from service.sync.pull import pull
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.shared_fixtures import load_fixture
from tests.sync.sync_harness import SyncApp, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
LOINC = "http://loinc.org"
SURVEY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}]
SITE_ROWS = "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679"  # an example site code system (an Epic-style OID)
PHQ9_ITEMS = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8")


def _observation(patient: str, code: dict[str, Any], value: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": SURVEY,
        "code": code,
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-11-02T10:00:00+00:00",
        **value,
        **extra,
    }


def test_pulled_totals_in_three_value_forms_one_itemised_and_a_mapped_site_code_are_scored(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
    target = sync_app.target(
        tenant,
        sekmet.base_url,
        pull=["patients", "observations"],
        mrn_system=mrn_system,
        code_map={f"{LOINC}|70274-6": [{"system": SITE_ROWS, "code": "3050"}]},
    )
    with sekmet.client() as peer:
        created = peer.post(
            "Patient",
            json={
                "resourceType": "Patient",
                "identifier": [{"system": mrn_system, "value": f"MRN-{uuid.uuid4().hex[:8]}"}],
                "name": [{"family": "Flowsheet", "given": ["Fran"]}],
                "gender": "female",
                "birthDate": "1981-05-04",
            },
        )
        assert created.status_code == 201, created.text
        patient = created.json()["id"]
        us_core = copy.deepcopy(load_fixture("fhir/uscore7-Observation-PHQ9-item-example-44261-6.json"))
        us_core = {k: v for k, v in us_core.items() if k not in ("id", "performer", "derivedFrom")}
        us_core["subject"] = {"reference": f"Patient/{patient}"}  # valueString "12"
        phq9 = {"coding": [{"system": LOINC, "code": "44261-6"}]}
        items = [
            {"code": {"coding": [{"system": LOINC, "code": c}]}, "valueInteger": 2 if c == "44260-8" else 1}
            for c in PHQ9_ITEMS
        ]
        sent = [
            us_core,
            _observation(patient, phq9, {"valueInteger": 9}, effectiveDateTime="2026-11-09T10:00:00+00:00"),
            _observation(
                patient,
                phq9,
                {"valueQuantity": {"value": 10, "unit": "{score}"}},
                component=items,
                effectiveDateTime="2026-11-16T10:00:00+00:00",
            ),
            _observation(patient, {"coding": [{"system": SITE_ROWS, "code": "3050"}]}, {"valueInteger": 7}),
        ]
        ours = []
        for observation in sent:
            answer = peer.post("Observation", json=observation)
            assert answer.status_code == 201, answer.text
            ours.append(answer.json()["id"])

    summary = pull(sync_app.engine, sync_app.settings, target)
    observations = summary.kinds["observations"]
    assert observations.created == 4, summary
    # The peer is shared by the module's tests: others' Observations name patients this tenant does not hold.
    assert not [e for e in observations.errors if any(i in e for i in ours)], observations.errors
    api = sync_app.driver(tenant)
    stored = api.client.get("/api/v1/questionnaire-responses", headers=api.headers).json()["items"]
    by_total = {(r["instrument"], r["score"]["total"]): r["score"] for r in stored}
    assert set(by_total) == {("phq-9", 12), ("phq-9", 9), ("phq-9", 10), ("gad-7", 7)}
    assert [by_total[k]["items_reported"] for k in [("phq-9", 12), ("phq-9", 9), ("phq-9", 10), ("gad-7", 7)]] == [
        False,
        False,
        True,
        False,
    ]
    assert [f["link_id"] for f in by_total[("phq-9", 10)]["safety_findings"]] == ["/44260-8"]
    assert pull(sync_app.engine, sync_app.settings, target).kinds["observations"].created == 0
