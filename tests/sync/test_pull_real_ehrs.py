"""The pull against EHRs as they are (issue #19, items 8 and 9): sekmet-fhir behind strict Epic and Oracle Health
fronts built from their CapabilityStatements, and a scripted transport where only time and throttling are faked.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from service.db.unit_of_work import unit_of_work
from service.records.sync_target import SyncTarget
from service.settings import get_settings
from service.sync.capabilities import CapabilityCache
from service.sync.cli import app as sync_cli
from service.sync.client import FhirClient
from service.sync.export import bulk_export
from service.sync.pull import PULL_ORDER, pull, retry_after
from service.sync.tables import PullCursor, QuarantinedResource
from service.sync.taking import quarantine
from tests.builders import patient_body
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.ehr_peer.strict_ehr import StrictEhr, epic_statement, oracle_statement
from tests.sync import ehr_shaped
from tests.sync.sync_harness import SyncApp, sync_app_fixture
from tests.web.conftest import Browser

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()
CLINICAL = ("Observation", "Encounter", "QuestionnaireResponse", "MedicationAdministration")


def _followed_patient(sync_app: SyncApp, tenant: str, mrn_system: str, mrn: str) -> str:
    body = patient_body(identifiers=[{"system": mrn_system, "value": mrn}])
    return str(sync_app.driver(tenant).create("patients", body)["id"])


def _midazolam(subject: str) -> dict[str, Any]:
    """An infusion Tandem does not take (not ketamine or esketamine): refused, so quarantined."""
    [given, _] = ehr_shaped.administrations(subject)
    given["medicationCodeableConcept"] = {
        "coding": [{"system": ehr_shaped.RXNORM, "code": "6960", "display": "midazolam"}]
    }
    return given


def _searches(ehr: StrictEhr, resource_type: str) -> list[str]:
    return [r.query for r in ehr.snapshot() if r.method == "GET" and r.path.endswith(f"/fhir/{resource_type}")]


@pytest.mark.parametrize("flavour", ["epic", "oracle"])
def test_the_pull_asks_only_what_the_ehr_declares(sync_app: SyncApp, sekmet: SekmetServer, flavour: str) -> None:
    tenant = sync_app.tenant()
    mrn_system, mrn = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}", f"{uuid.uuid4().int % 10**9}"
    _followed_patient(sync_app, tenant, mrn_system, mrn)
    with sekmet.client() as peer:
        subject = peer.post("Patient", json=ehr_shaped.patient(mrn_system, mrn)).json()["id"]
        for resource in [*ehr_shaped.encounters(subject), *ehr_shaped.administrations(subject)]:
            assert peer.post(resource["resourceType"], json=resource).status_code == 201
    statement = epic_statement() if flavour == "epic" else oracle_statement()
    with StrictEhr(sekmet.root_url, statement, require_patient=flavour == "oracle") as ehr:
        # The strict front refuses what the old pull sent: it can fail this test.
        with httpx.Client(base_url=ehr.url("/fhir"), headers={"Prefer": "handling=strict"}) as raw:
            old = raw.get("Encounter", params={"_count": "100", "_lastUpdated": "gt2026-01-01"})
            assert old.status_code == 400 and old.json()["resourceType"] == "OperationOutcome"
        ehr.clear()
        target = sync_app.target(tenant, ehr.url("/fhir"), push=[], pull=list(PULL_ORDER), mrn_system=mrn_system)
        cache = CapabilityCache()
        first = pull(sync_app.engine, sync_app.settings, target, capability_cache=cache)
        assert ehr.refused() == [], ehr.refusals
        assert first.kinds["medication-administrations"].created == 2, first
        first_encounters = _searches(ehr, "Encounter")
        ehr.clear()
        again = pull(sync_app.engine, sync_app.settings, target, capability_cache=cache)
        assert ehr.refused() == [], ehr.refusals
        assert cache.fetches == 1  # the CapabilityStatement is read once and cached
    # October's infusions are before the window (the last pull minus 30 days): not asked again, none duplicated.
    assert again.kinds["medication-administrations"].created == 0
    assert again.kinds["medication-administrations"].fetched == 0
    for resource_type in CLINICAL:
        assert _searches(ehr, resource_type), resource_type
        assert all(f"patient={subject}" in q for q in _searches(ehr, resource_type)), resource_type
    assert all("_lastUpdated" not in q and "date=" not in q for q in first_encounters)  # first pull: history
    [encounters] = _searches(ehr, "Encounter")
    [administrations] = _searches(ehr, "MedicationAdministration")
    [responses] = _searches(ehr, "QuestionnaireResponse")
    if flavour == "epic":  # no _lastUpdated anywhere: a window on each type's date parameter
        assert "date=ge" in encounters and "_lastUpdated" not in encounters
        assert "effective-time=ge" in administrations
        assert "authored=ge" in responses
        assert "_count=100" in encounters
    else:  # Oracle Health offers _lastUpdated on Encounter only of these; QuestionnaireResponse has no date, no _count
        assert "_lastUpdated=gt" in encounters
        assert "effective-time=ge" in administrations and "_count" not in administrations
        assert responses == f"patient={subject}"


def _scripted(
    statement: dict[str, Any], pages: dict[str, dict[str, Any]], throttle_first: int = 1
) -> tuple[httpx.Client, list[str]]:
    """A transport answering from a script: metadata, then `pages` by path?query; the first search is throttled."""
    seen: list[str] = []
    throttled = {"left": throttle_first}

    def answer(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        seen.append(url)
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json=statement)
        if throttled["left"] and "Encounter" in url:
            throttled["left"] -= 1
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"resourceType": "OperationOutcome"})
        for key, page in pages.items():
            if key in url:
                return httpx.Response(200, json=page)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})

    return httpx.Client(transport=httpx.MockTransport(answer)), seen


def _bundle(entries: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": "http://ehr.test/fhir/x"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": e, "search": {"mode": "match"}} for e in entries],
    }


def test_next_links_are_followed_as_given_duplicates_taken_once_and_retry_after_honoured(
    sync_app: SyncApp,
) -> None:
    tenant = sync_app.tenant()
    mrn_system, mrn = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14", f"{uuid.uuid4().int % 10**9}"
    ours = _followed_patient(sync_app, tenant, mrn_system, mrn)
    base = "http://127.0.0.1:9/fhir"
    ehr_patient = {"id": "eP1", **ehr_shaped.patient(mrn_system, mrn)}
    visits = [{"id": f"enc-{n}", **e} for n, e in enumerate(ehr_shaped.encounters("eP1"))]
    for visit in visits:
        visit["type"] = ehr_shaped.encounters("eP1")[2]["type"]  # SNOMED CBT: taken on main today
    another_patients = {**visits[0], "id": "enc-other", "subject": {"reference": "Patient/someone-else"}}
    opaque = f"{base}/Encounter?session=Zx81-opaque&page=2"
    pages = {
        "/Patient?identifier=" + mrn_system.replace(":", "%3A") + "%7C": _bundle([ehr_patient]),
        "patient=eP1&_count=100": _bundle([visits[0], visits[1], another_patients], opaque),
        "session=Zx81-opaque&page=2": _bundle([visits[1], visits[2]]),  # visits[1] again: taken once
    }
    http, seen = _scripted(epic_statement(), pages)
    sleeps: list[float] = []
    with unit_of_work(sync_app.engine) as session:
        target_id = sync_app.target(tenant, base, push=[], pull=["patients", "encounters"], mrn_system=mrn_system)
        target = session.get(SyncTarget, target_id)
        assert target is not None
    client = FhirClient(target, sync_app.settings, http=http, rate_limit=False)
    summary = pull(sync_app.engine, sync_app.settings, target_id, client=client, sleep=sleeps.append)
    assert sleeps == [7.0], seen  # the 429's Retry-After, once
    assert summary.throttled == 1
    assert opaque in seen  # the next link as the EHR wrote it, never built
    assert not [u for u in seen if "_offset" in u or "page=3" in u]
    encounters = summary.kinds["encounters"]
    assert encounters.pages == 2 and encounters.fetched == 3, encounters  # visits[1] once, enc-other not taken
    assert encounters.created == 3, encounters
    api = sync_app.driver(tenant)
    sessions = api.client.get("/api/v1/cbt-sessions", params={"patient_id": ours}, headers=api.headers).json()
    assert len(sessions["items"]) == 3
    with Session(sync_app.engine) as session:
        cursors = session.exec(select(PullCursor).where(col(PullCursor.target_id) == target_id)).all()
    assert [c.resource_type for c in cursors] == [f"encounters:{ours}"]  # one cursor per source and patient


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), ("0", 0.0), ("100000", 120.0), (None, 5.0), ("x", 5.0)])
def test_retry_after_is_read_as_seconds_capped(value: str | None, seconds: float) -> None:
    assert retry_after(value) == seconds


def test_retry_after_as_an_http_date() -> None:
    assert 0 <= retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date gone by: at once


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, sync_app: SyncApp) -> Iterator[None]:
    monkeypatch.setenv("TANDEM_DATABASE_URL", sync_app.settings.database_url)
    monkeypatch.setenv("TANDEM_SYNC_ALLOWED_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("TANDEM_SYNC_REQUIRE_HTTPS", "false")
    monkeypatch.setenv("TANDEM_CANONICAL_BASE", sync_app.settings.canonical_base)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_refused_resource_is_quarantined_listed_and_the_command_exits_non_zero(
    sync_app: SyncApp, sekmet: SekmetServer, cli_env: None
) -> None:
    tenant = sync_app.tenant()
    mrn_system, mrn = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}", f"{uuid.uuid4().int % 10**9}"
    _followed_patient(sync_app, tenant, mrn_system, mrn)
    with sekmet.client() as peer:
        subject = peer.post("Patient", json=ehr_shaped.patient(mrn_system, mrn)).json()["id"]
        refused_id = peer.post("MedicationAdministration", json=_midazolam(subject)).json()["id"]
    with StrictEhr(sekmet.root_url, oracle_statement(), require_patient=True) as ehr:
        target = sync_app.target(
            tenant, ehr.url("/fhir"), push=[], pull=["patients", "medication-administrations"], mrn_system=mrn_system
        )
        ran = CliRunner().invoke(sync_cli, ["pull", target])
        assert ran.exit_code == 1, ran.output
        assert "1 refused (quarantined)" in ran.output, ran.output
        assert f"MedicationAdministration/{refused_id}" in ran.output
        assert "medicationCodeableConcept" in ran.output  # the element, and why
        # The cursor moved on (the window starts after October's infusion): nothing refused this time, but the item
        # stays in the quarantine.
        assert CliRunner().invoke(sync_cli, ["pull", target]).exit_code == 0
        assert ehr.refused() == []
    with Session(sync_app.engine) as session:
        [item] = session.exec(select(QuarantinedResource).where(col(QuarantinedResource.target_id) == target)).all()
    assert (item.resource_type, item.remote_id, item.state) == ("MedicationAdministration", refused_id, "refused")
    assert item.element == "MedicationAdministration.medicationCodeableConcept"
    assert "not ketamine or esketamine" in item.reason
    assert item.resource["medicationCodeableConcept"]["coding"][0]["code"] == "6960"  # the raw resource
    assert item.attempts == 1 and item.first_seen <= item.last_seen
    listed = CliRunner().invoke(sync_cli, ["quarantine", target])
    assert listed.exit_code == 1 and refused_id in listed.output

    admin = sync_app.driver(tenant, "admin")
    url = f"/api/v1/sync/targets/{target}/quarantine"
    assert admin.client.get(url, headers=sync_app.driver(tenant).headers).status_code == 403  # admins only
    answer = admin.client.get(url, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    assert [(i["remote_id"], i["state"]) for i in answer.json()] == [(refused_id, "refused")]
    other = sync_app.driver(sync_app.tenant(), "admin")
    assert other.client.get(url, headers=other.headers).status_code == 404  # another tenant's target
    retried = admin.client.post(f"{url}/retry", json={}, headers=admin.headers)
    assert retried.status_code == 200 and retried.json() == {"accepted": [], "refused": [item.id]}


def test_a_quarantined_item_is_taken_on_retry_once_its_cause_is_gone(sync_app: SyncApp) -> None:
    """The retry path on its own: an Encounter refused while its patient was unknown here, retried from the admin
    page once the patient is linked, becomes a CBT session and leaves the quarantine."""
    tenant = sync_app.tenant()
    base = "http://127.0.0.1:9/fhir"
    target_id = sync_app.target(tenant, base, push=[], pull=["encounters"], mrn_system="urn:oid:1.2.3")
    [_, _, visit] = ehr_shaped.encounters("eP9")
    visit["id"] = "enc-9"
    with unit_of_work(sync_app.engine) as session:
        target = session.get(SyncTarget, target_id)
        assert target is not None
        row = quarantine(session, target, visit, "Encounter.subject: Patient/eP9 is not known here")
    ours = sync_app.driver(tenant).create("patients", patient_body(source={"system": base, "value": "Patient/eP9"}))
    page = Browser(sync_app.client, sync_app.settings)
    page.sign_in(tenant, "admin")
    shown = page.get("/sync")
    assert "Patient/eP9 is not known here" in shown.text and "Encounter/enc-9" in shown.text
    retried = page.post(f"/sync/targets/{target_id}/quarantine/retry", {}, csrf=page.csrf())
    assert retried.status_code == 303 and "accepted=1" in retried.headers["location"], retried.text
    with Session(sync_app.engine) as session:
        item = session.get(QuarantinedResource, row.id)
    assert item is not None and item.state == "accepted" and item.record_id is not None and item.attempts == 2
    api = sync_app.driver(tenant)
    sessions = api.client.get("/api/v1/cbt-sessions", params={"patient_id": ours["id"]}, headers=api.headers).json()
    assert [s["id"] for s in sessions["items"]] == [item.record_id]
    assert "Nothing refused." in page.get("/sync").text


def test_a_code_map_change_retries_what_it_may_now_map(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    """Refuse (a flowsheet row only the EHR's code names) → fix the target's code map → retried → accepted."""
    tenant = sync_app.tenant()
    mrn_system, mrn = f"urn:oid:1.2.840.114350.{uuid.uuid4().int % 10**8}", f"{uuid.uuid4().int % 10**9}"
    ours = _followed_patient(sync_app, tenant, mrn_system, mrn)
    flowsheet = {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679", "code": "3040104180"}
    with sekmet.client() as peer:
        subject = peer.post("Patient", json=ehr_shaped.patient(mrn_system, mrn)).json()["id"]
        [row, _, _] = ehr_shaped.score_observations(subject)
        row["code"] = {"coding": [flowsheet], "text": "PHQ-9 total"}
        assert peer.post("Observation", json=row).status_code == 201
    with StrictEhr(sekmet.root_url, epic_statement(), require_patient=False) as ehr:
        target = sync_app.target(
            tenant, ehr.url("/fhir"), push=[], pull=["patients", "observations"], mrn_system=mrn_system
        )
        summary = pull(sync_app.engine, sync_app.settings, target, capability_cache=CapabilityCache())
    assert summary.failed and summary.kinds["observations"].refused == 1, summary
    admin = sync_app.driver(tenant, "admin")
    current = admin.client.get(f"/api/v1/sync/targets/{target}", headers=admin.headers)
    code_map = {f"{ehr_shaped.LOINC}|44261-6": [flowsheet]}  # standard system|code -> the site's codings
    changed = admin.client.patch(
        f"/api/v1/sync/targets/{target}",
        json={"code_map": code_map},
        headers={**admin.headers, "If-Match": current.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    with Session(sync_app.engine) as session:
        [item] = session.exec(select(QuarantinedResource).where(col(QuarantinedResource.target_id) == target)).all()
    assert item.attempts == 2, "the code-map change did not retry the quarantine"
    if item.state != "accepted":
        pytest.xfail(f"waiting for obs-scores: the inbound code map (EHR code -> LOINC) ({item.reason[:200]})")
    api = sync_app.driver(tenant)
    responses = api.client.get("/api/v1/questionnaire-responses", params={"patient_id": ours}, headers=api.headers)
    assert [r["id"] for r in responses.json()["items"]] == [item.record_id]


def test_bulk_export_back_loads_a_new_programme(sync_app: SyncApp, sekmet: SekmetServer) -> None:
    tenant = sync_app.tenant()
    mrn_system, mrn = f"urn:oid:1.2.3.{uuid.uuid4().int % 10**8}", f"{uuid.uuid4().int % 10**9}"
    group_members: list[dict[str, Any]] = []
    with sekmet.client() as peer:
        subject = peer.post("Patient", json=ehr_shaped.patient(mrn_system, mrn)).json()["id"]
        given = [
            peer.post("MedicationAdministration", json=r).json()["id"] for r in ehr_shaped.administrations(subject)
        ]
        group_members.append({"entity": {"reference": f"Patient/{subject}"}})
        group = peer.post(
            "Group", json={"resourceType": "Group", "type": "person", "actual": True, "member": group_members}
        ).json()["id"]
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(min(seconds, 0.2))  # the real time is not waited: only that Retry-After was read

    with StrictEhr(sekmet.root_url, epic_statement(), require_patient=False) as ehr:
        target = sync_app.target(
            tenant, ehr.url("/fhir"), push=[], pull=["patients", "medication-administrations"], mrn_system=mrn_system
        )
        # Epic exports by Group only: a patient-level kick-off is not even tried.
        told: list[tuple[str, int]] = []
        summary = bulk_export(
            sync_app.engine,
            sync_app.settings,
            target,
            group=group,
            capability_cache=CapabilityCache(),
            sleep=wait,
            progress=lambda name, counts: told.append((name, counts.fetched)),
        )
        assert ehr.refused() == [], ehr.refusals
        kickoffs = [r for r in ehr.snapshot() if r.path.endswith("$export")]
    assert not summary.failed, summary
    assert [r.path for r in kickoffs] == [f"/fhir/Group/{group}/$export"]
    assert "_type=Patient%2CMedicationAdministration" in kickoffs[0].query
    assert waits and all(w == 1.0 for w in waits)  # sekmet's Retry-After: 1 while the export runs
    assert summary.kinds["export:Patient"].created == 1, summary
    assert summary.kinds["export:MedicationAdministration"].created == 2, summary
    # The command's progress bar is told after each line taken (issue #24 part 7).
    given_as = "export:MedicationAdministration"
    assert told == [("export:Patient", 1), (given_as, 1), (given_as, 2)]
    api = sync_app.driver(tenant)
    found = api.client.get("/fhir/Patient", params={"identifier": f"{mrn_system}|{mrn}"}, headers=api.headers).json()
    [patient] = [e["resource"] for e in found["entry"]]
    sessions = api.client.get(
        "/api/v1/ketamine-administrations", params={"patient_id": patient["id"]}, headers=api.headers
    ).json()
    assert sorted(s["source"]["value"] for s in sessions["items"]) == sorted(
        f"MedicationAdministration/{g}" for g in given
    )
    assert json.dumps(summary.kinds["export:Patient"].refusals) == "[]"
