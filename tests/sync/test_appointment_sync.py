"""Appointments against a real FHIR peer (sekmet-fhir): pushed as the natural Appointment where the peer creates
it idempotently, and pulled back into a planned session (once, however often the pull runs), on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from service.sync.pull import pull
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.fhir.test_appointments import appointment
from tests.sync.sync_harness import SyncApp, drain, outbox_rows, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
START = datetime(2026, 12, 20, 14, 0, tzinfo=UTC)


def test_an_appointment_is_pushed_once_as_an_appointment(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    sync_app.target(tenant, sekmet.base_url, push=["patients", "appointments"])
    api = sync_app.driver(tenant)
    patient_id = api.patient()
    body = {
        "patient_id": patient_id,
        "service": "cbt",
        "status": "booked",
        "start": START.isoformat(),
        "end": (START + timedelta(minutes=50)).isoformat(),
    }
    created = api.create("appointments", body)
    drain(sync_app, tenant)
    rows = [r for r in outbox_rows(sync_app.engine, tenant) if r.record_kind == "appointments"]
    assert [r.status for r in rows] == ["sent"], [(r.status, r.last_error) for r in rows]
    with sekmet.client() as peer:
        found = peer.get("Appointment", params={"identifier": f"{sync_app.settings.canonical_base}/identifier/"
                                                f"appointment|{created['id']}"}).json()  # fmt: skip
    [copy] = [e["resource"] for e in found.get("entry") or []]
    assert copy["status"] == "booked" and copy["start"].startswith("2026-12-20T14:00")


def test_a_pulled_appointment_becomes_a_planned_session_once(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    mrn_system = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}"
    target = sync_app.target(tenant, sekmet.base_url, push=[], pull=["patients", "appointments"], mrn_system=mrn_system)
    with sekmet.client() as peer:
        patient = peer.post(
            "Patient",
            json={
                "resourceType": "Patient",
                "identifier": [{"system": mrn_system, "value": f"MRN-{uuid.uuid4().hex[:8]}"}],
                "name": [{"family": "Booked", "given": ["Bea"]}],
                "gender": "female",
                "birthDate": "1981-05-06",
            },
        )
        assert patient.status_code == 201, patient.text
        sent = appointment(
            patient.json()["id"], start=START.isoformat(), end=(START + timedelta(minutes=50)).isoformat()
        )
        del sent["identifier"]  # born in the EHR: named by its id there
        booked = peer.post("Appointment", json=sent)
        assert booked.status_code == 201, booked.text
    summary = pull(sync_app.engine, sync_app.settings, target)
    assert summary.kinds["appointments"].created == 1, summary
    api = sync_app.driver(tenant)
    page = api.client.get(
        "/api/v1/appointments",
        params={"identifier": f"{sekmet.base_url}|Appointment/{booked.json()['id']}"},
        headers=api.headers,
    ).json()
    [stored] = page["items"]
    assert (stored["service"], stored["status"]) == ("cbt", "booked")
    again = pull(sync_app.engine, sync_app.settings, target)
    assert again.kinds["appointments"].created == 0 and again.kinds["appointments"].errors == []
