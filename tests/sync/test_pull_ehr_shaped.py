"""Issue #19's end-to-end done-when: a hospital whose EHR holds a ketamine + CBT patient the way Epic holds them
gets, after one pull through a strict Epic front (tests/ehr_peer/strict_ehr.py), the right plan status, and the
pull made no request the EHR refused. On SQLite and PostgreSQL.

Each part is checked and the test fails listing every part that did not hold, so one run names all of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from service.records.audit import AuditEvent
from service.sync.capabilities import CapabilityCache
from service.sync.pull import PULL_ORDER, pull
from tests.builders import enrollment_body, patient_body
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.ehr_peer.strict_ehr import StrictEhr, epic_statement
from tests.sync import ehr_shaped
from tests.sync.sync_harness import SyncApp, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
API = "/api/v1"


@dataclass
class Parts:
    failures: list[tuple[str, str]] = field(default_factory=list)

    def check(self, what: str, test: Callable[[], None]) -> None:
        try:
            test()
        except (AssertionError, KeyError, IndexError, TypeError, ValueError, StopIteration) as error:
            self.failures.append((what, f"{type(error).__name__}: {error}"[:400]))

    def finish(self) -> None:
        assert not self.failures, self.failures


def test_one_pull_from_an_epic_shaped_ehr_gives_the_plan_status(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.840.114350.1.13.0.1.7.5.{uuid.uuid4().int % 10**8}.14"
    mrn = f"{uuid.uuid4().int % 10**9}"
    api = sync_app.driver(tenant)
    # The programme enrolled the patient with the hospital's MRN (no phone: that is in the EHR).
    ours = api.create("patients", patient_body(identifiers=[{"system": mrn_system, "value": mrn}]))["id"]
    api.create("enrollments", enrollment_body(ours, start_date="2026-10-05"))
    with sekmet.client() as peer:
        loaded = ehr_shaped.load(peer, mrn_system, mrn)

    with StrictEhr(sekmet.root_url, epic_statement(), require_patient=False) as ehr:
        target = sync_app.target(tenant, ehr.url("/fhir"), push=[], pull=list(PULL_ORDER), mrn_system=mrn_system)
        summary = pull(sync_app.engine, sync_app.settings, target, capability_cache=CapabilityCache())
        records = ehr.snapshot()

    # The pull asked only what Epic answers: nothing refused, every clinical search about the patient.
    assert ehr.refused() == [], ehr.refusals
    assert not summary.errors and summary.patients == 1, summary
    searches = [r for r in records if r.method == "GET" and r.path.count("/") == 2 and "metadata" not in r.path]
    clinical = [r for r in searches if not r.path.endswith("/Patient")]
    asked = {r.path.rsplit("/", 1)[1] for r in clinical}
    assert asked >= {"Observation", "Encounter", "QuestionnaireResponse", "MedicationAdministration"}, asked
    assert all(f"patient={loaded.patient}" in r.query for r in clinical), [r.query for r in clinical]
    assert not any("_lastUpdated" in r.query for r in searches)  # Epic declares it for no type

    status_answer = api.client.get(f"{API}/patients/{ours}/plan-status", headers=api.headers)
    assert status_answer.status_code == 200, status_answer.text
    [status] = status_answer.json()["statuses"]
    given = api.client.get(f"{API}/ketamine-administrations", params={"patient_id": ours}, headers=api.headers)
    sessions: list[dict[str, Any]] = given.json()["items"]

    parts = Parts()

    def two_ketamine_sessions() -> None:
        assert len(sessions) == 2, sessions
        assert status["counts"]["ketamine_induction"]["done"] == 2, status["counts"]

    parts.check("2 ketamine sessions from the read-only MedicationAdministrations", two_ketamine_sessions)

    def phq9() -> None:
        [outcome] = [o for o in status["outcomes"] if o["instrument"] == "phq-9"]
        assert outcome["baseline"]["total"] == 20, outcome
        assert outcome["latest"]["total"] == 9, outcome
        assert outcome["in_response"] is True, outcome

    parts.check("baseline 20, latest 9, in response", phq9)

    def suicidality() -> None:
        reason = next(r for r in status["reasons"] if r["code"] == "phq9_item9_positive")
        assert reason["open"] and reason["severity"] == "urgent", reason

    parts.check("item 9 positive raises the suicidality flag", suicidality)

    def bp_on_the_infusion() -> None:
        # A pulled reading is its own record (the EHR's Observation), attached to the session whose window holds it.
        first = min(sessions, key=lambda s: s["started_at"])
        listed = api.client.get(f"{API}/vital-signs", params={"patient_id": ours}, headers=api.headers)
        readings: list[dict[str, Any]] = listed.json()["items"]
        assert [(r["systolic_mmhg"], r["diastolic_mmhg"], r["ketamine_administration_id"]) for r in readings] == [
            (148, 92, first["id"])
        ], readings

    parts.check("the BP reading on the first infusion", bp_on_the_infusion)

    def three_cbt_sessions() -> None:
        assert status["counts"]["cbt"]["done"] == 3, status["counts"]

    parts.check("3 attended CBT sessions (2 CPT 90837, 1 SNOMED)", three_cbt_sessions)

    def appointment_next() -> None:
        assert "Appointment" in asked, "no Appointment search (PULL_SOURCES has no Appointment entry)"
        due = status["next_due"]["cbt_session"]
        assert due is not None and due["due_at"].startswith("2026-12-10T14:00"), due

    parts.check("the booked Appointment is the next CBT due", appointment_next)

    def phone() -> None:
        read = api.client.get(f"/fhir/Patient/{ours}", headers=api.headers).json()
        assert any(t.get("value") == ehr_shaped.PHONE for t in read.get("telecom") or []), read.get("telecom")

    parts.check("the phone number", phone)

    def nothing_refused() -> None:
        refused = [line for kind in summary.kinds.values() for line in kind.refusals]
        assert not summary.failed and not refused, refused

    parts.check("nothing refused (else quarantined and the pull exits non-zero)", nothing_refused)
    parts.finish()


def test_a_linked_patient_follows_the_ehrs_contact_details_and_death(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    """The hospital's registration is the EHR: the patient Tandem holds by MRN takes the EHR's phone once (one new
    version, audited as the target's update), a re-pull of the same Patient changes nothing, and the EHR recording
    the death ends the enrolment."""
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.840.114350.1.13.0.1.7.5.{uuid.uuid4().int % 10**8}.14"
    mrn = f"{uuid.uuid4().int % 10**9}"
    api = sync_app.driver(tenant)

    def read(kind: str, record_id: str) -> dict[str, Any]:
        answer = api.client.get(f"{API}/{kind}/{record_id}", headers=api.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    ours = api.create("patients", patient_body(identifiers=[{"system": mrn_system, "value": mrn}]))["id"]
    enrollment = api.create("enrollments", enrollment_body(ours, start_date="2026-10-05"))["id"]
    target = sync_app.target(tenant, sekmet.root_url + "/fhir", push=[], pull=["patients"], mrn_system=mrn_system)
    with sekmet.client() as peer:
        answer = peer.post("Patient", json=ehr_shaped.patient(mrn_system, mrn))
        assert answer.status_code == 201, answer.text
        theirs = answer.json()

        def pull_and_read() -> dict[str, Any]:
            summary = pull(sync_app.engine, sync_app.settings, target, capability_cache=CapabilityCache())
            assert not summary.failed, summary
            return read("patients", ours)

        first = pull_and_read()
        assert [t["value"] for t in first["telecom"]] == [ehr_shaped.PHONE]
        assert first["version"] == 2 and first["family_name"] == patient_body()["family_name"]
        with Session(sync_app.engine) as session:
            updates = session.exec(
                select(AuditEvent).where(
                    col(AuditEvent.tenant_id) == tenant,
                    col(AuditEvent.record_id) == ours,
                    col(AuditEvent.action) == "update",
                )
            ).all()
        assert [(u.actor, u.outcome) for u in updates] == [(f"sync:{target}", "success")]

        assert pull_and_read()["version"] == 2  # the same Patient again: nothing to follow

        died = {**theirs, "deceasedDateTime": "2026-11-30"}
        assert peer.put(f"Patient/{theirs['id']}", json=died).status_code == 200
        after = pull_and_read()
    assert (after["deceased"], after["deceased_at"]) == (True, "2026-11-30")
    ended = read("enrollments", enrollment)
    assert ended["status"] == "discontinued" and "deceased" in ended["status_reason"].lower(), ended
