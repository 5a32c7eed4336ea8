"""A referral at the EHR (sekmet-fhir as the peer) enrols the patient at Tandem with the protocol the target's rule
chooses; other orders of the patient are left alone; a rule naming a protocol the tenant lacks is refused."""

from __future__ import annotations

import uuid
from typing import Any

from service.sync.pull import pull
from tests.builders import API
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.sync.sync_harness import SyncApp, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
SITE_ORDERS = "urn:oid:1.2.840.114350.1.13.0.1.7.2.696580"  # an Epic-style procedure (order) code system
SNOMED = "http://snomed.info/sct"


def _patient(mrn_system: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": mrn_system,
                "value": f"MRN-{uuid.uuid4().hex[:8]}",
            }
        ],
        "name": [{"family": family, "given": ["Rene"]}],
        "gender": "other",
        "birthDate": "1981-05-06",
    }


def _order(patient: str, code: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": code,
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": "2026-11-30T09:00:00-05:00",
        **more,
    }


def test_a_referral_at_the_ehr_enrols_the_patient_with_the_targets_protocol_rule(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
    rule = {"protocol_by_code": {f"{SITE_ORDERS}|KETCBT-ESK": "esketamine-cbt"}, "default_protocol": "iv-ketamine-cbt"}
    target = sync_app.target(
        tenant, sekmet.base_url, push=[], pull=["patients", "referrals"], mrn_system=mrn_system, referrals=rule
    )
    with sekmet.client() as peer:
        by_site_code = peer.post("Patient", json=_patient(mrn_system, "Sitecode")).json()["id"]
        by_programme = peer.post("Patient", json=_patient(mrn_system, "Programme")).json()["id"]
        site = {"coding": [{"system": SITE_ORDERS, "code": "KETCBT-ESK", "display": "Esketamine + CBT programme"}]}
        programme = {"coding": [{"system": SNOMED, "code": "306343005", "display": "Referral to psychotherapist"}]}
        lipids = {"coding": [{"system": "http://loinc.org", "code": "24331-1", "display": "Lipid panel"}]}
        for order in (_order(by_site_code, site), _order(by_programme, programme), _order(by_site_code, lipids)):
            created = peer.post("ServiceRequest", json=order)
            assert created.status_code == 201, created.text

    summary = pull(sync_app.engine, sync_app.settings, target)
    referrals = summary.kinds["referrals"]
    # The peer is shared by the module's runs: another run's referrals name patients this tenant never pulled
    # (refused, until the pull is patient-scoped); none of ours is refused, and the lipid panel is skipped.
    assert referrals.created == 2, summary
    assert not [e for e in referrals.errors if by_site_code in e or by_programme in e], summary
    assert referrals.skipped - len(referrals.errors) >= 1, summary
    api = sync_app.driver(tenant)
    enrolled = {}
    for ehr_id in (by_site_code, by_programme):
        [patient] = api.client.get(
            f"{API}/patients", params={"identifier": f"{sekmet.base_url}|Patient/{ehr_id}"}, headers=api.headers
        ).json()["items"]
        [enrollment] = api.client.get(
            f"{API}/enrollments", params={"patient_id": patient["id"]}, headers=api.headers
        ).json()["items"]
        enrolled[ehr_id] = enrollment
        status = api.client.get(f"{API}/patients/{patient['id']}/plan-status", headers=api.headers).json()
        assert status["statuses"][0]["enrollment_id"] == enrollment["id"]
    assert enrolled[by_site_code]["protocol_id"] == "esketamine-cbt"
    assert enrolled[by_programme]["protocol_id"] == "iv-ketamine-cbt"
    assert enrolled[by_programme]["start_date"] == "2026-11-30"  # the day as the EHR wrote it

    again = pull(sync_app.engine, sync_app.settings, target)
    assert again.kinds["referrals"].created == 0
    for ehr_id, enrollment in enrolled.items():
        still = api.client.get(
            f"{API}/enrollments", params={"patient_id": enrollment["patient_id"]}, headers=api.headers
        )
        assert [e["id"] for e in still.json()["items"]] == [enrollment["id"]], ehr_id


def test_a_referral_rule_naming_an_unknown_protocol_or_a_bare_code_is_refused(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    tenant = sync_app.tenant()
    admin = sync_app.driver(tenant, "admin")
    base = {"name": "epic", "base_url": sekmet.base_url, "pull": ["referrals"]}
    for referrals, element in (
        ({"default_protocol": "ketamine-typo"}, "referrals.default_protocol"),
        ({"protocol_by_code": {f"{SITE_ORDERS}|X": "nope"}}, f"referrals.protocol_by_code['{SITE_ORDERS}|X']"),
        ({"protocol_by_code": {"KETCBT": "esketamine-cbt"}}, "referrals"),
    ):
        response = admin.client.post(
            f"{API}/sync/targets", json={**base, "referrals": referrals}, headers=admin.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"].startswith(element), response.text
    listed = admin.client.get(f"{API}/sync/targets", headers=admin.headers).json()["items"]
    assert listed == []


def test_a_referral_held_then_completed_at_the_ehr_holds_then_completes_the_enrolment(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
    target = sync_app.target(
        tenant,
        sekmet.base_url,
        push=[],
        pull=["patients", "referrals"],
        mrn_system=mrn_system,
        referrals={"default_protocol": "iv-ketamine-cbt"},
    )
    programme = {"coding": [{"system": SNOMED, "code": "306343005"}]}
    with sekmet.client() as peer:
        ehr_patient = peer.post("Patient", json=_patient(mrn_system, "Followed")).json()["id"]
        referral = peer.post("ServiceRequest", json=_order(ehr_patient, programme)).json()
    assert pull(sync_app.engine, sync_app.settings, target).kinds["referrals"].created == 1
    api = sync_app.driver(tenant)
    key = {"identifier": f"{sekmet.base_url}|ServiceRequest/{referral['id']}"}

    def enrolment() -> dict[str, Any]:
        [found] = api.client.get(f"{API}/enrollments", params=key, headers=api.headers).json()["items"]
        return dict(found)

    for status, note, expected in (
        ("on-hold", "Inpatient admission", "on-hold"),
        ("active", None, "active"),
        ("completed", "Course finished", "completed"),
    ):
        changed = {**referral, "status": status, "note": [{"text": note}] if note else []}
        with sekmet.client() as peer:
            put = peer.put(f"ServiceRequest/{referral['id']}", json=changed)
            assert put.status_code == 200, put.text
            referral = put.json()
        summary = pull(sync_app.engine, sync_app.settings, target)
        assert summary.kinds["referrals"].errors == [], summary
        assert (enrolment()["status"], enrolment()["status_reason"]) == (expected, note), status
    plan = api.client.get(f"{API}/patients/{enrolment()['patient_id']}/plan-status", headers=api.headers).json()
    assert plan["statuses"][0]["status"] == "completed"
