"""Therapy visits as EHRs record them (issue #19, item 3), on SQLite and PostgreSQL: Encounters typed with CPT
psychotherapy codes or SNOMED CT CBT, `length` instead of `period.end`, numbered by date the same way on every path
(POST, transaction Bundle, `tandem import`, pull from sekmet-fhir); psychotherapy not known to be CBT is kept with
its modality stated; what is not a therapy visit, and a length in a unit that is not time, is refused naming the
element and the fix, and stores nothing.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from service.settings import get_settings
from service.sync.pull import pull
from tests.builders import enrollment_body
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.fhir.support import FHIR_JSON, patient_resource
from tests.fhir.test_write_statements import statements
from tests.sync.sync_harness import SyncApp, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()

CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CBT = {"system": SNOMED, "code": "228557008", "display": "Cognitive and behavioral therapy"}
PSYCHOTHERAPY_60 = {"system": CPT, "code": "90837", "display": "Psychotherapy, 60 minutes with patient"}


def visit(patient: str, start: str, *types: dict[str, Any], status: str = "finished", **extra: Any) -> dict[str, Any]:
    """An Encounter as an EHR writes a therapy visit: no extension of ours, so no session number."""
    return {
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [t]} for t in types],
        "subject": {"reference": patient},
        "period": {"start": start},
        **extra,
    }


class Tandem:
    """One tenant, spoken to as its EHR (FHIR) and as its care team (/api/v1)."""

    def __init__(self, sync_app: SyncApp) -> None:
        self.app = sync_app
        self.tenant = sync_app.tenant()
        self.fhir = {**sync_app.driver(self.tenant, "ehr-system").headers, "Content-Type": FHIR_JSON}
        self.api = sync_app.driver(self.tenant, "clinician")

    def patient(self, **overrides: Any) -> str:
        created = self.app.client.post("/fhir/Patient", json=patient_resource(**overrides), headers=self.fhir)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def post(self, encounter: dict[str, Any], expect: int = 201) -> dict[str, Any]:
        answered = self.app.client.post("/fhir/Encounter", json=encounter, headers=self.fhir)
        assert answered.status_code == expect, answered.text
        body: dict[str, Any] = answered.json()
        return body

    def session(self, session_id: str) -> dict[str, Any]:
        read = self.api.client.get(f"/api/v1/cbt-sessions/{session_id}", headers=self.api.headers)
        assert read.status_code == 200, read.text
        body: dict[str, Any] = read.json()
        return body

    def sessions(self, patient_id: str) -> list[dict[str, Any]]:
        page = self.api.client.get(
            "/api/v1/cbt-sessions", params={"patient_id": patient_id, "limit": 50}, headers=self.api.headers
        )
        assert page.status_code == 200, page.text
        return sorted(page.json()["items"], key=lambda s: s["planned_start"])

    def numbers(self, patient_id: str) -> list[tuple[str, int]]:
        return [(s["planned_start"][:10], s["session_number"]) for s in self.sessions(patient_id)]

    def served(self, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The Encounter and its Procedure as the facade serves them."""
        encounter = self.app.client.get(f"/fhir/Encounter/{session_id}", headers=self.fhir)
        assert encounter.status_code == 200, encounter.text
        found = self.app.client.get(
            "/fhir/Procedure", params={"patient": encounter.json()["subject"]["reference"]}, headers=self.fhir
        ).json()
        [procedure] = [
            e["resource"]
            for e in found.get("entry", [])
            if e["resource"].get("encounter", {}).get("reference") == f"Encounter/{session_id}"
        ]
        return encounter.json(), procedure


@pytest.fixture
def tandem(sync_app: SyncApp) -> Tandem:
    return Tandem(sync_app)


@pytest.mark.parametrize(
    ("code", "minutes"),
    [("90832", 30), ("90834", 45), ("90837", 60), ("90853", 50)],  # 90853 (group) has no time: the default
)
def test_a_cpt_typed_visit_is_kept_as_psychotherapy_of_unstated_modality(
    tandem: Tandem, code: str, minutes: int
) -> None:
    patient = tandem.patient()
    cpt = {"system": CPT, "code": code, "display": f"CPT {code}"}
    # Attended, with neither period.end nor length: the end stays unknown, the planned length is the code's.
    created = tandem.post(visit(f"Patient/{patient}", "2026-10-20T14:00:00Z", cpt))
    stored = tandem.session(created["id"])
    assert stored["modality"] == "psychotherapy-unspecified"
    assert (stored["status"], stored["session_number"], stored["planned_minutes"]) == ("attended", 1, minutes)
    assert stored["actual_end"] is None
    assert stored["visit_types"] == [{"coding": [cpt], "text": None}]
    encounter, procedure = tandem.served(created["id"])
    # Served back with the sender's coding and no CBT claim it did not make.
    assert encounter["type"] == [{"coding": [cpt]}]
    assert procedure["code"]["coding"][0]["code"] == "75516001"
    assert "modality not stated" in encounter["text"]["div"]


def test_a_snomed_cbt_visit_with_length_instead_of_an_end_is_cbt(tandem: Tandem) -> None:
    patient = tandem.patient()
    for length, minutes in [
        ({"value": 1, "unit": "hour", "system": UCUM, "code": "h"}, 60),
        ({"value": 50, "unit": "minutes", "system": UCUM, "code": "min"}, 50),
    ]:
        start = f"2026-10-{20 + minutes % 7:02d}T14:00:00Z"
        created = tandem.post(visit(f"Patient/{patient}", start, CBT, PSYCHOTHERAPY_60, length=length))
        stored = tandem.session(created["id"])
        assert stored["modality"] == "cbt"
        assert stored["planned_minutes"] == minutes
        assert stored["actual_end"] is not None
        assert (stored["actual_end"][11:16], stored["actual_start"][11:16]) == (
            "15:00" if minutes == 60 else "14:50",
            "14:00",
        )
        encounter, procedure = tandem.served(created["id"])
        assert encounter["type"] == [{"coding": [CBT]}, {"coding": [PSYCHOTHERAPY_60]}]
        assert procedure["code"]["coding"][0]["code"] == "228557008"


def test_a_planned_visit_with_neither_end_nor_length_keeps_its_planned_length(tandem: Tandem) -> None:
    patient = tandem.patient()
    created = tandem.post(visit(f"Patient/{patient}", "2026-11-02T10:00:00Z", CBT, status="planned"))
    stored = tandem.session(created["id"])
    assert (stored["status"], stored["actual_start"], stored["planned_minutes"]) == ("planned", None, 50)


BAD_LENGTHS = [
    ({"value": 50, "unit": "mg", "system": UCUM, "code": "mg"}, "Encounter.length.code"),
    ({"value": 50, "unit": "minutes"}, "Encounter.length.code"),
    ({"value": 50, "system": "http://example.org/units", "code": "min"}, "Encounter.length.system"),
    ({"value": 0, "system": UCUM, "code": "min"}, "Encounter.length.value"),
]


@pytest.mark.parametrize(("length", "element"), BAD_LENGTHS)
def test_a_length_that_is_not_a_time_is_refused(tandem: Tandem, length: dict[str, Any], element: str) -> None:
    patient = tandem.patient()
    refused = tandem.post(visit(f"Patient/{patient}", "2026-10-20T14:00:00Z", CBT, length=length), expect=422)
    assert refused["resourceType"] == "OperationOutcome"
    [issue] = refused["issue"]
    assert issue["expression"] == [element]
    assert issue["code"] in ("code-invalid", "value")
    assert tandem.sessions(patient) == []


def test_an_emergency_visit_is_refused_naming_encounter_type_and_the_fix(tandem: Tandem) -> None:
    patient = tandem.patient()
    ed = {"system": SNOMED, "code": "4525004", "display": "Emergency department patient visit"}
    refused = tandem.post(visit(f"Patient/{patient}", "2026-10-20T14:00:00Z", ed), expect=422)
    [issue] = refused["issue"]
    assert (issue["code"], issue["expression"]) == ("not-supported", ["Encounter.type"])
    assert "not a therapy visit" in issue["diagnostics"]
    assert "http://snomed.info/sct|4525004" in issue["diagnostics"]  # what was sent
    assert "90837" in issue["diagnostics"] and "code map" in issue["diagnostics"]  # and what would do
    family = {"system": CPT, "code": "90847"}
    refused = tandem.post(visit(f"Patient/{patient}", "2026-10-20T14:00:00Z", family), expect=422)
    assert "family psychotherapy" in refused["issue"][0]["diagnostics"]
    assert tandem.sessions(patient) == []


def test_psychotherapy_of_unstated_modality_counts_for_cbt_with_a_note(tandem: Tandem) -> None:
    patient = tandem.patient()
    tandem.api.create("enrollments", enrollment_body(patient))
    tandem.post(visit(f"Patient/{patient}", "2026-10-06T14:00:00Z", CBT))
    tandem.post(visit(f"Patient/{patient}", "2026-10-13T14:00:00Z", PSYCHOTHERAPY_60))
    read = tandem.api.client.get(
        f"/api/v1/patients/{patient}/plan-status", params={"as_of": "2026-10-14T12:00:00Z"}, headers=tandem.api.headers
    )
    assert read.status_code == 200, read.text
    [status] = read.json()["statuses"]
    assert status["counts"]["cbt"]["done"] == 2
    [note] = [r for r in status["reasons"] if r["code"] == "cbt_modality_not_stated"]
    assert note["severity"] == "info"
    assert note["message"].startswith("1 of the 2 therapy sessions counted toward the CBT course were recorded as")
    assert "confirm with the therapist" in note["message"]


def _imported(tandem: Tandem, resource: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "visits.ndjson"
    file.write_text(json.dumps(resource) + "\n", encoding="utf-8")
    monkeypatch.setenv("TANDEM_DATABASE_URL", tandem.app.settings.database_url)
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    get_settings.cache_clear()
    try:
        ran = CliRunner().invoke(cli, ["import", str(file), "--tenant", tandem.tenant])
    finally:
        get_settings.cache_clear()
    assert ran.exit_code == 0 and "1 created" in ran.output, ran.output


def _in_transaction(tandem: Tandem, resource: dict[str, Any]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": resource, "request": {"method": "POST", "url": "Encounter"}}],
    }
    answered = tandem.app.client.post("/fhir", json=bundle, headers=tandem.fhir)
    assert answered.status_code == 200, answered.text
    assert answered.json()["entry"][0]["response"]["status"].startswith("201")


def test_pulled_and_sent_visits_are_numbered_by_date_the_same_on_every_path(
    tandem: Tandem, sekmet: SekmetServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
    mrn = {"system": mrn_system, "value": f"MRN-{uuid.uuid4().hex[:8]}", "type": {"text": "MRN"}}
    patient = tandem.patient(identifier=[mrn])
    ours = f"Patient/{patient}"
    target = tandem.app.target(tandem.tenant, sekmet.base_url, pull=["patients", "encounters"], mrn_system=mrn_system)

    tandem.post(visit(ours, "2026-10-06T14:00:00Z", CBT))
    with sekmet.client() as peer:
        at_ehr = peer.post("Patient", json=patient_resource(identifier=[mrn]))
        assert at_ehr.status_code == 201, at_ehr.text
        # The issue's case: a SNOMED CBT Encounter born in the EHR, with no session number of ours.
        pulled = peer.post("Encounter", json=visit(f"Patient/{at_ehr.json()['id']}", "2026-10-13T14:00:00Z", CBT))
        assert pulled.status_code == 201, pulled.text
    summary = pull(tandem.app.engine, tandem.app.settings, target)
    assert summary.kinds["encounters"].created == 1, summary
    # (the peer is shared by the module's tests: other tenants' visits there are "not known here")
    assert not [e for e in summary.kinds["encounters"].errors if pulled.json()["id"] in e], summary
    _in_transaction(tandem, visit(ours, "2026-10-20T14:00:00Z", PSYCHOTHERAPY_60))
    _imported(tandem, visit(ours, "2026-10-27T14:00:00Z", CBT), tmp_path, monkeypatch)
    in_order = [("2026-10-06", 1), ("2026-10-13", 2), ("2026-10-20", 3), ("2026-10-27", 4)]
    assert tandem.numbers(patient) == in_order

    # Resent, pulled again, or updated: each visit keeps its number.
    again = pull(tandem.app.engine, tandem.app.settings, target)
    assert again.kinds["encounters"].created == 0, again
    first = tandem.sessions(patient)[0]
    served, _ = tandem.served(first["id"])
    served["period"] = {"start": "2026-10-06T14:05:00Z", "end": "2026-10-06T14:55:00Z"}
    served.pop("extension")  # as an EHR writes it back: without our session-number extension
    edited = {"If-Match": f'W/"{served["meta"]["versionId"]}"'}
    put = tandem.app.client.put(f"/fhir/Encounter/{first['id']}", json=served, headers={**tandem.fhir, **edited})
    assert put.status_code == 200, put.text
    assert tandem.numbers(patient) == in_order

    # A visit that arrives after later ones were numbered takes its place by date; the later ones keep
    # theirs (documented in docs/fhir.md: numbers once given are never moved).
    tandem.post(visit(ours, "2026-10-01T14:00:00Z", CBT))
    assert tandem.numbers(patient) == [("2026-10-01", 1), *in_order]


def test_a_bundle_of_visits_is_numbered_as_if_each_came_alone(tandem: Tandem) -> None:
    """Visits of one patient in one transaction, out of date order and around one already stored, one in error:
    each takes the number it would have had sent alone in the Bundle's order (the unit counts the visits it
    stores as it goes, service/intake/resources.py), and a resend inside the Bundle keeps its first number."""
    patient = tandem.patient()
    ours = f"Patient/{patient}"
    tandem.post(visit(ours, "2026-10-13T14:00:00Z", CBT))
    sent = [
        ("urn:uuid:" + str(uuid.uuid4()), visit(ours, "2026-10-20T14:00:00Z", CBT)),
        ("urn:uuid:" + str(uuid.uuid4()), visit(ours, "2026-10-06T14:00:00Z", CBT, status="entered-in-error")),
        ("urn:uuid:" + str(uuid.uuid4()), visit(ours, "2026-10-06T15:00:00Z", PSYCHOTHERAPY_60)),
        ("urn:uuid:" + str(uuid.uuid4()), visit(ours, "2026-10-27T14:00:00Z", CBT)),
    ]
    entries = [
        {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": "Encounter"}}
        for url, resource in sent
    ]
    entries.append({**entries[0]})  # the first visit again, under the same fullUrl
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    with statements(tandem.app.engine) as queried:
        answered = tandem.app.client.post("/fhir", json=bundle, headers=tandem.fhir)
    assert answered.status_code == 200, answered.text
    # The patient's visits are read for numbering once, not once per visit; then once more by the plan refresh.
    assert queried["SELECT cbt_sessions"] <= 3, sorted(queried.items())
    # 10-20 after 10-13: 2; the visit in error is numbered but not counted; 10-06 before both: 1; 10-27 after
    # three: 4 (10-13 and 10-20 keep theirs; numbers once given never move).
    numbers = {(s["planned_start"][:16], s["status"]): s["session_number"] for s in tandem.sessions(patient)}
    assert numbers == {
        ("2026-10-06T14:00", "entered-in-error"): 1,
        ("2026-10-06T15:00", "attended"): 1,
        ("2026-10-13T14:00", "attended"): 1,
        ("2026-10-20T14:00", "attended"): 2,
        ("2026-10-27T14:00", "attended"): 4,
    }, numbers


EPIC_VISIT_TYPE = "urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.30"


def test_a_site_visit_type_is_a_therapy_visit_once_the_code_map_names_it(tandem: Tandem, sekmet: SekmetServer) -> None:
    mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
    mrn = {"system": mrn_system, "value": f"MRN-{uuid.uuid4().hex[:8]}", "type": {"text": "MRN"}}
    patient = tandem.patient(identifier=[mrn])
    site = {"system": EPIC_VISIT_TYPE, "code": "1023", "display": "CBT FOLLOW UP"}
    refused = tandem.post(visit(f"Patient/{patient}", "2026-10-06T14:00:00Z", site), expect=422)
    assert "code map" in refused["issue"][0]["diagnostics"]
    assert tandem.sessions(patient) == []

    # The EHR's visit type 1023 means CBT: with that entry the same Encounter is a CBT visit, sent or pulled.
    code_map = {f"{SNOMED}|228557008": [{"system": EPIC_VISIT_TYPE, "code": "1023"}]}
    target = tandem.app.target(
        tandem.tenant, sekmet.base_url, pull=["patients", "encounters"], mrn_system=mrn_system, code_map=code_map
    )
    sent = tandem.post(visit(f"Patient/{patient}", "2026-10-06T14:00:00Z", site))
    with sekmet.client() as peer:
        at_ehr = peer.post("Patient", json=patient_resource(identifier=[mrn]))
        assert at_ehr.status_code == 201, at_ehr.text
        pulled = peer.post("Encounter", json=visit(f"Patient/{at_ehr.json()['id']}", "2026-10-13T14:00:00Z", site))
        assert pulled.status_code == 201, pulled.text
    summary = pull(tandem.app.engine, tandem.app.settings, target)
    assert summary.kinds["encounters"].created == 1, summary
    assert not [e for e in summary.kinds["encounters"].errors if pulled.json()["id"] in e], summary
    sessions = tandem.sessions(patient)
    assert [(s["modality"], s["session_number"]) for s in sessions] == [("cbt", 1), ("cbt", 2)]
    encounter, procedure = tandem.served(sent["id"])
    # The site's coding is served back as sent, beside the standard one the map added.
    assert site in encounter["type"][0]["coding"]
    assert any(c["code"] == "228557008" for t in encounter["type"] for c in t["coding"])
    assert procedure["code"]["coding"][0]["code"] == "228557008"
