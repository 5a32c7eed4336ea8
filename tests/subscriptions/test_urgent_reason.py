"""A sekmet-fhir subscriber subscribes to "urgent reason raised": handshake, then an item-9 positive PHQ-9's
notification with its event number and focus (the Flag), heartbeats, id-only against full-resource, and a subscriber
that was down catching up by $events."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from service.clock import now_utc
from service.subscriptions.events import sweep_heartbeats
from service.subscriptions.tables import SubscriptionNotification
from tests.builders import API
from tests.ehr_peer.fault_proxy import Fault, FaultPlan, FaultProxy, FaultRule
from tests.ehr_peer.sekmet_server import SekmetServer
from tests.subscriptions.conftest import Tandem
from tests.subscriptions.support import (
    deliver,
    deliver_notifications,
    enrolled_patient,
    enrolment,
    hook_url,
    phq9,
    received,
    subscription,
)


def _subscribe(tandem: Tandem, body: dict[str, object]) -> dict[str, object]:
    response = tandem.client.post("/fhir/Subscription", json=body, headers=tandem.headers)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    assert created["status"] == "requested"
    assert response.headers["Location"].endswith(f"/fhir/Subscription/{created['id']}")
    return created


def _read(tandem: Tandem, subscription_id: object) -> dict[str, object]:
    response = tandem.client.get(f"/fhir/Subscription/{subscription_id}", headers=tandem.headers)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_an_item9_positive_phq9_reaches_the_subscriber_with_its_event_number(
    tandem: Tandem, sekmet: SekmetServer
) -> None:
    patient_id = enrolled_patient(tandem.api)
    endpoint, key = hook_url(sekmet.root_url)
    created = _subscribe(tandem, subscription("urgent-reason-raised", endpoint, patient_id=patient_id))

    deliver(tandem.engine, tandem.settings, tandem.tenant)
    [handshake] = received(sekmet, key)
    assert handshake["type"] == "handshake"
    assert handshake["subscription"].endswith(f"/Subscription/{created['id']}")
    assert _read(tandem, created["id"])["status"] == "active"

    tandem.api.create("questionnaire-responses", phq9(patient_id, item9=0, each=2, days_ago=4))  # not urgent
    positive = tandem.api.create("questionnaire-responses", phq9(patient_id, item9=2))
    deliver(tandem.engine, tandem.settings, tandem.tenant)

    notes = received(sekmet, key)
    assert [n["type"] for n in notes] == ["handshake", "event-notification"]
    event = notes[1]
    assert event["topic"].endswith("/SubscriptionTopic/urgent-reason-raised")
    assert event["since_start"] == "1"
    [number] = event["events"]
    assert number["number"] == "1"
    focus = str(number["focus"])
    assert "/fhir/Flag/" in focus
    flag = tandem.client.get(f"/fhir/Flag/{focus.rsplit('/', 1)[-1]}", headers=tandem.headers).json()
    assert flag["status"] == "active"
    assert flag["code"]["coding"][0]["code"] == "phq9_item9_positive"
    evidence = [e["valueReference"]["reference"] for e in flag["extension"]]
    assert f"QuestionnaireResponse/{positive['id']}" in evidence
    assert event["resources"] == []  # id-only: the subscriber reads the focus itself

    # Nothing more to send: the same finding is not raised twice.
    deliver(tandem.engine, tandem.settings, tandem.tenant)
    assert len(received(sekmet, key)) == 2

    status = tandem.client.get(f"/fhir/Subscription/{created['id']}/$status", headers=tandem.headers).json()
    assert status["type"] == "history"
    parameters = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
    assert parameters["type"]["valueCode"] == "query-status"
    assert parameters["status"]["valueCode"] == "active"
    assert parameters["events-since-subscription-start"]["valueString"] == "1"


def test_another_patients_finding_is_not_sent_to_a_filtered_subscription(tandem: Tandem, sekmet: SekmetServer) -> None:
    watched, other = enrolled_patient(tandem.api), enrolled_patient(tandem.api)
    endpoint, key = hook_url(sekmet.root_url)
    created = _subscribe(tandem, subscription("urgent-reason-raised", endpoint, patient_id=watched))
    deliver(tandem.engine, tandem.settings, tandem.tenant)
    tandem.api.create("questionnaire-responses", phq9(other, item9=1))
    deliver(tandem.engine, tandem.settings, tandem.tenant)
    assert [n["type"] for n in received(sekmet, key)] == ["handshake"]
    assert _read(tandem, created["id"])["status"] == "active"


def test_full_resource_carries_the_flag_and_id_only_does_not(tandem: Tandem, sekmet: SekmetServer) -> None:
    patient_id = enrolled_patient(tandem.api)
    full_endpoint, full_key = hook_url(sekmet.root_url)
    ids_endpoint, ids_key = hook_url(sekmet.root_url)
    _subscribe(
        tandem, subscription("urgent-reason-raised", full_endpoint, patient_id=patient_id, content="full-resource")
    )
    _subscribe(tandem, subscription("urgent-reason-raised", ids_endpoint, patient_id=patient_id, content="id-only"))
    deliver(tandem.engine, tandem.settings, tandem.tenant)
    tandem.api.create("questionnaire-responses", phq9(patient_id, item9=3))
    deliver(tandem.engine, tandem.settings, tandem.tenant)

    full = received(sekmet, full_key)[-1]
    [flag] = full["resources"]
    assert flag["resourceType"] == "Flag" and flag["status"] == "active"
    assert full["events"][0]["focus"].endswith(f"/Flag/{flag['id']}")
    ids = received(sekmet, ids_key)[-1]
    assert ids["resources"] == []
    assert ids["events"][0]["focus"] == full["events"][0]["focus"]
    entry = ids["bundle"]["entry"][1]
    assert "resource" not in entry and entry["fullUrl"] == full["events"][0]["focus"]


def test_a_heartbeat_follows_the_heartbeat_period(tandem: Tandem, sekmet: SekmetServer) -> None:
    endpoint, key = hook_url(sekmet.root_url)
    created = _subscribe(tandem, subscription("plan-status-changed", endpoint, heartbeat=60))
    deliver(tandem.engine, tandem.settings, tandem.tenant)
    sweep_heartbeats(tandem.engine)  # not a minute yet: nothing for ours
    deliver_notifications(tandem.engine, tandem.settings, tandem.tenant)
    assert [n["type"] for n in received(sekmet, key)] == ["handshake"]

    # The clock: a minute passes since the handshake was sent.
    sweep_heartbeats(tandem.engine, now_utc() + timedelta(seconds=61))
    deliver_notifications(tandem.engine, tandem.settings, tandem.tenant)
    notes = received(sekmet, key)
    assert [n["type"] for n in notes] == ["handshake", "heartbeat"]
    assert notes[1]["since_start"] == "0" and notes[1]["events"] == []
    assert notes[1]["subscription"].endswith(f"/Subscription/{created['id']}")


def test_a_subscriber_that_was_down_is_retried_and_catches_up_by_event_number(
    tandem: Tandem, sekmet: SekmetServer
) -> None:
    patient_id, enrollment_id = enrolment(tandem.api)
    with FaultProxy(sekmet.root_url, FaultPlan.passthrough()) as proxy:
        endpoint, key = hook_url(proxy.root_url)
        created = _subscribe(tandem, subscription("urgent-reason-raised", endpoint, patient_id=patient_id))
        deliver(tandem.engine, tandem.settings, tandem.tenant)
        assert [n["type"] for n in received(sekmet, key)] == ["handshake"]

        # The subscriber goes down (503) for every attempt the first event gets: 3 attempts, then a dead letter.
        proxy.set_plan(FaultPlan([FaultRule(Fault.error(503), method="POST", path=r"^/hooks/")]))
        tandem.api.create("questionnaire-responses", phq9(patient_id, item9=1))
        for attempt in range(1, 4):
            deliver_notifications(tandem.engine, tandem.settings, tandem.tenant)
            row = _event_row(tandem, created["id"], 1)
            assert row.attempts == attempt and row.last_status_code == 503
            assert row.status == ("failed" if attempt < 3 else "dead")
            if row.status == "failed":
                assert row.next_attempt_at > now_utc()  # backed off
                _due_now(tandem, row.id)  # the clock: the backoff passes
        assert proxy.count(fault="error") == 3

        # Back up; the next finding (after the first was acknowledged) is event 2, and the gap shows.
        proxy.set_plan(FaultPlan.passthrough())
        _acknowledge_and_raise_again(tandem, patient_id, enrollment_id)
        deliver(tandem.engine, tandem.settings, tandem.tenant)
    notes = received(sekmet, key)
    assert [n["type"] for n in notes] == ["handshake", "event-notification"]
    assert notes[1]["events"][0]["number"] == "2" and notes[1]["since_start"] == "2"

    missed = tandem.client.get(
        f"/fhir/Subscription/{created['id']}/$events",
        params={"eventsSinceNumber": "1", "eventsUntilNumber": "1"},
        headers=tandem.headers,
    )
    assert missed.status_code == 200, missed.text
    parameters = missed.json()["entry"][0]["resource"]["parameter"]
    assert next(p for p in parameters if p["name"] == "type")["valueCode"] == "query-event"
    [event] = [p for p in parameters if p["name"] == "notification-event"]
    parts = {p["name"]: p for p in event["part"]}
    assert parts["event-number"]["valueString"] == "1"
    assert "/fhir/Flag/" in parts["focus"]["valueReference"]["reference"]
    everything = tandem.client.get(f"/fhir/Subscription/{created['id']}/$events", headers=tandem.headers).json()
    numbers = [
        part["valueString"]
        for p in everything["entry"][0]["resource"]["parameter"]
        if p["name"] == "notification-event"
        for part in p["part"]
        if part["name"] == "event-number"
    ]
    assert numbers == ["1", "2"]
    status = tandem.client.get(f"/fhir/Subscription/{created['id']}/$status", headers=tandem.headers).json()
    names = [p["name"] for p in status["entry"][0]["resource"]["parameter"]]
    assert "error" in names  # the dead letter is reported


def _event_row(tandem: Tandem, subscription_id: object, number: int) -> SubscriptionNotification:
    with Session(tandem.engine) as session:
        return session.exec(
            select(SubscriptionNotification).where(
                col(SubscriptionNotification.subscription_id) == subscription_id,
                col(SubscriptionNotification.event_number) == number,
            )
        ).one()


def _due_now(tandem: Tandem, row_id: int | None) -> None:
    with Session(tandem.engine) as session:
        session.execute(
            update(SubscriptionNotification)
            .where(col(SubscriptionNotification.id) == row_id)
            .values(next_attempt_at=now_utc() - timedelta(seconds=1))
        )
        session.commit()


def _acknowledge_and_raise_again(tandem: Tandem, patient_id: str, enrollment_id: str) -> None:
    """A clinician acknowledges the open item-9 finding; a later PHQ-9 is item-9 positive again: a new Flag."""
    statuses = tandem.client.get(f"{API}/patients/{patient_id}/plan-status", headers=tandem.api.headers).json()
    reason = next(r for s in statuses["statuses"] for r in s["reasons"] if r["code"] == "phq9_item9_positive")
    acknowledged = tandem.client.post(
        f"{API}/patients/{patient_id}/flag-acknowledgements",
        headers=tandem.clinician,
        json={
            "enrollment_id": enrollment_id,
            "code": reason["code"],
            "occurrence_id": reason["occurrence_id"],
            "note": "Called; safe",
        },
    )
    assert acknowledged.status_code == 201, acknowledged.text
    tandem.api.create("questionnaire-responses", phq9(patient_id, item9=1, days_ago=0.5))
