"""The other two topics, and events raised once per unit of work: a transaction Bundle of two item-9 positive
PHQ-9s for one patient is two "questionnaire scored" events (numbered 1 and 2) and one "plan status changed"."""

from __future__ import annotations

import uuid
from typing import Any

from tests.ehr_peer.sekmet_server import SekmetServer
from tests.subscriptions.conftest import Tandem
from tests.subscriptions.support import deliver, enrolment, hook_url, phq9, received, subscription


def _as_sent_again(tandem: Tandem, questionnaire_response_id: str, days_ago: int) -> dict[str, Any]:
    """A stored QuestionnaireResponse as FHIR, made a new one (its own identifier and date)."""
    stored = tandem.client.get(
        f"/fhir/QuestionnaireResponse/{questionnaire_response_id}", headers=tandem.headers
    ).json()
    resource = {k: v for k, v in stored.items() if k not in ("id", "meta", "text")}
    resource["identifier"] = {"system": "urn:test:subscriptions", "value": uuid.uuid4().hex}
    resource["authored"] = f"2026-11-{30 - days_ago:02d}T08:00:00+00:00"
    return resource


def test_a_bundle_raises_the_status_change_once_and_each_response_scored(tandem: Tandem, sekmet: SekmetServer) -> None:
    patient_id, enrollment_id = enrolment(tandem.api)
    status_endpoint, status_key = hook_url(sekmet.root_url)
    scored_endpoint, scored_key = hook_url(sekmet.root_url)
    for topic, endpoint in (("plan-status-changed", status_endpoint), ("questionnaire-scored", scored_endpoint)):
        body = subscription(topic, endpoint, patient_id=patient_id, content="full-resource")
        created = tandem.client.post("/fhir/Subscription", json=body, headers=tandem.headers)
        assert created.status_code == 201, created.text
    deliver(tandem.engine, tandem.settings, tandem.tenant)

    # a template response (not positive, long ago), taken again twice as item-9 positive in one transaction
    template = tandem.api.create("questionnaire-responses", phq9(patient_id, item9=0, days_ago=30))
    deliver(tandem.engine, tandem.settings, tandem.tenant)
    before_scored = len(received(sekmet, scored_key))
    before_status = len(received(sekmet, status_key))
    entries = []
    for days_ago in (2, 1):
        resource = _as_sent_again(tandem, str(template["id"]), days_ago)
        for item in resource["item"]:
            if item["linkId"].endswith("44260-8"):  # item 9
                assert "valueInteger" in item["answer"][0], item
                item["answer"] = [{"valueInteger": 2}]  # more than half the days
        entries.append({"resource": resource, "request": {"method": "POST", "url": "QuestionnaireResponse"}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    answered = tandem.client.post("/fhir", json=bundle, headers=tandem.headers)
    assert answered.status_code == 200, answered.text
    deliver(tandem.engine, tandem.settings, tandem.tenant)

    scored = received(sekmet, scored_key)[before_scored:]
    assert [n["events"][0]["number"] for n in scored] == [str(before_scored), str(before_scored + 1)]
    assert all(n["resources"][0]["resourceType"] == "QuestionnaireResponse" for n in scored)
    status = received(sekmet, status_key)[before_status:]
    assert len(status) == 1  # once per unit of work, not once per entry
    [care_plan] = status[0]["resources"]
    assert care_plan["resourceType"] == "CarePlan" and care_plan["id"] == enrollment_id
    codes = [c["code"] for c in care_plan["extension"][0]["valueCodeableConcept"]["coding"]]
    assert codes[0] == "at_risk" and "phq9_item9_positive" in codes
