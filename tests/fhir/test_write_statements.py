"""A transaction Bundle's writes are sent in bulk (issue #18): each entry's projection, audit row and received copy
wait in the unit of work and go out as one multi-row INSERT per table, and what an entry refers to is looked up
once per unit; every write still reads back at once. Counted as SQL statements, not timed."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.builders import PHQ9_ITEMS, ApiDriver, enrollment_body, questionnaire_body
from tests.fhir.support import fhir_headers

ENTRIES = 12


@contextmanager
def statements(engine: Engine) -> Iterator[Counter[str]]:
    """Statements sent while the block runs, by verb and table ("INSERT INTO audit_events", "SELECT patients")."""
    seen: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        verb = re.match(r"\s*(INSERT INTO|SELECT|UPDATE|DELETE FROM)\b", statement)
        table = re.search(r"\b(?:INTO|FROM|UPDATE)\s+(\w+)", statement)
        if verb and table:
            seen[f"{verb.group(1)} {table.group(1)}"] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _phq9_entry(template: dict[str, Any], n: int) -> dict[str, Any]:
    authored = (datetime.now(UTC) - timedelta(days=20 - n)).isoformat(timespec="seconds")
    resource = {k: v for k, v in template.items() if k not in ("id", "meta", "extension")}
    resource |= {"identifier": {"system": "urn:test:bulk", "value": f"phq9-{n}"}, "authored": authored}
    return {"resource": resource, "request": {"method": "POST", "url": "QuestionnaireResponse"}}


def test_a_transaction_bundle_sends_its_rows_in_bulk_and_reads_back(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    headers = fhir_headers(api.headers)
    patient_id = api.patient()
    api.create(
        "enrollments",
        enrollment_body(patient_id, start_date=(datetime.now(UTC) - timedelta(days=30)).date().isoformat()),
    )
    answers = [{"link_id": item, "value_integer": 1} for item in PHQ9_ITEMS]
    first = api.create("questionnaire-responses", questionnaire_body(patient_id, answers=answers))
    template = client.get(f"/fhir/QuestionnaireResponse/{first['id']}", headers=headers).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_phq9_entry(template, n) for n in range(ENTRIES)],
    }

    with statements(engine) as sent:
        answer = client.post("/fhir", json=bundle, headers=headers)
    assert answer.status_code == 200, answer.text
    assert [e["response"]["status"] for e in answer.json()["entry"]] == ["201"] * ENTRIES

    # The entries' 36 resource versions (a response and its two Observations each) and their search tokens together,
    # then the refreshed CarePlan and its twelve Flags (the driver may send those as two batches): not one per entry.
    # One audit INSERT and one of the received copies for all twelve; the patient read once, not once per entry.
    assert sent["INSERT INTO fhir_resources"] <= 3, sorted(sent.items())
    assert sent["INSERT INTO fhir_search_tokens"] <= 3, sent
    assert sent["INSERT INTO audit_events"] == 1, sent
    assert sent["INSERT INTO received_resources"] == 1, sent
    assert sent["SELECT patients"] <= 3, sent
    # Answered from what was written: no read-back of each entry's resource.
    assert sent["SELECT fhir_resources"] <= 3, sent

    found = client.get("/fhir/QuestionnaireResponse", params={"patient": patient_id, "_count": 50}, headers=headers)
    ids = {e["resource"]["id"] for e in found.json()["entry"]}
    assert {e["response"]["location"].split("/")[1] for e in answer.json()["entry"]} <= ids
    assert len(ids) == ENTRIES + 1


def test_a_bundles_resend_lookups_go_out_together_and_a_resend_finds_every_record(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    """Each entry asks whether its record is stored already: one SELECT per table for the whole Bundle, not one per
    entry, and the answer is right both ways (new the first time, found when the same Bundle comes again, and an
    entry repeated inside the Bundle is stored once)."""
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    headers = fhir_headers(api.headers)
    patient_id = api.patient()
    api.create(
        "enrollments",
        enrollment_body(patient_id, start_date=(datetime.now(UTC) - timedelta(days=30)).date().isoformat()),
    )
    answers = [{"link_id": item, "value_integer": 1} for item in PHQ9_ITEMS]
    first = api.create("questionnaire-responses", questionnaire_body(patient_id, answers=answers))
    template = client.get(f"/fhir/QuestionnaireResponse/{first['id']}", headers=headers).json()
    entries = [_phq9_entry(template, n) for n in range(ENTRIES)]
    entries.append(_phq9_entry(template, 0))  # the same response twice in one Bundle
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    def by_source(sent: Counter[str]) -> int:
        return sent["SELECT questionnaire_responses"]

    with statements(engine) as sent:
        answer = client.post("/fhir", json=bundle, headers=headers)
    assert answer.status_code == 200, answer.text
    statuses = [e["response"]["status"] for e in answer.json()["entry"]]
    assert statuses == ["201"] * ENTRIES + ["200"], statuses
    locations = [e["response"]["location"].split("/_history")[0] for e in answer.json()["entry"]]
    assert locations[-1] == locations[0] and len(set(locations)) == ENTRIES
    # The refresh reads the patient's responses once; the resend lookups add one SELECT, not thirteen.
    assert by_source(sent) <= 3, sorted(sent.items())

    with statements(engine) as again:
        resent = client.post("/fhir", json=bundle, headers=headers)
    assert resent.status_code == 200, resent.text
    assert [e["response"]["status"] for e in resent.json()["entry"]] == ["200"] * (ENTRIES + 1)
    assert [e["response"]["location"].split("/_history")[0] for e in resent.json()["entry"]] == locations
    assert by_source(again) <= 3, sorted(again.items())


def test_the_tenants_zone_and_protocols_are_read_once_for_every_refreshed_patient(
    client: TestClient, engine: Engine, tenant: str, auth: Callable[..., dict[str, str]]
) -> None:
    """Each changed patient's recompute needs the tenant's zone and protocols; a Bundle for three patients reads
    them once, and every patient's plan still comes out of it."""
    api = ApiDriver(client, auth(tenant, "ehr-system"))
    headers = fhir_headers(api.headers)
    start = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    patients = [api.patient() for _ in range(3)]
    answers = [{"link_id": item, "value_integer": 1} for item in PHQ9_ITEMS]
    templates = []
    for patient_id in patients:
        api.create("enrollments", enrollment_body(patient_id, start_date=start))
        first = api.create("questionnaire-responses", questionnaire_body(patient_id, answers=answers))
        templates.append(client.get(f"/fhir/QuestionnaireResponse/{first['id']}", headers=headers).json())
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_phq9_entry(template, n) for n, template in enumerate(templates)],
    }

    with statements(engine) as sent:
        answer = client.post("/fhir", json=bundle, headers=headers)
    assert answer.status_code == 200, answer.text
    # The tenants row: once for the request's tenant check, once for the zone of all three recomputes.
    assert sent["INSERT INTO plan_statuses"] == 3 and sent["SELECT tenants"] <= 2, sorted(sent.items())
    assert sent["SELECT protocols"] <= 1, sorted(sent.items())
    for patient_id in patients:
        plans = client.get("/fhir/CarePlan", params={"subject": f"Patient/{patient_id}"}, headers=headers).json()
        assert plans.get("total", len(plans.get("entry", []))) >= 1, plans
