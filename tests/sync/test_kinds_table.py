"""One record⇄FHIR table drives the facade and the push: what an EHR is sent is what the facade serves (the
CarePlan with its computed plan status and progress), and every kind the sync takes is in the table."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.record_fhir import KIND_FHIR, NO_CONTEXT, PULL_SOURCES, Kind, PlanContext, resources_of
from service.record_store.kinds import RECORD_KINDS, RecordKind
from service.records.base import RecordMeta
from service.sync.capabilities import Capabilities, TypeSupport, decide
from service.sync.records import mapped_resources
from service.sync.target_kind import SYNC_TARGETS
from service.sync.targets import PullKind, PushKind
from tests.builders import PHQ9_ITEMS, enrollment_body, questionnaire_body
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.fhir_mappings import strategies as s
from tests.sync.sync_harness import SyncApp, drain, sync_app_fixture

sekmet = sekmet_fixture()
sync_app = sync_app_fixture()

RECORDS: dict[Kind, st.SearchStrategy[Any]] = {
    Kind.PATIENTS: s.patients(),
    Kind.ENROLLMENTS: s.enrollments(),
    Kind.KETAMINE_ADMINISTRATIONS: s.administrations(),
    Kind.CBT_SESSIONS: s.cbt_sessions(),
    Kind.QUESTIONNAIRE_RESPONSES: s.responses(),
}
CONTEXTS = st.sampled_from(
    [
        NO_CONTEXT,
        PlanContext("at_risk", ("phq9_item9_positive",)),
        PlanContext("on_track"),
        PlanContext("needs_attention"),
    ]
)


def _takes_everything() -> Capabilities:
    every = TypeSupport(frozenset({"create", "update"}), identifier_search=True, update_create=True)
    types = {t for entry in KIND_FHIR.values() for v in (entry.natural, entry.fallback) if v for t in v.required}
    types |= {t for entry in KIND_FHIR.values() if entry.natural for t in entry.natural.optional}
    return Capabilities(types=dict.fromkeys(types, every), batch=True, transaction=False)


def test_every_kind_the_sync_names_is_in_the_table() -> None:
    sent = {entry.kind.value for entry in KIND_FHIR.values() if entry.natural is not None}
    assert set(typing.get_args(PushKind)) == sent
    assert set(typing.get_args(PullKind)) == {source.name for source in PULL_SOURCES}
    assert all(source.kind in KIND_FHIR for source in PULL_SOURCES)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), context=CONTEXTS)
def test_an_ehr_taking_every_type_is_sent_what_the_facade_serves(data: st.DataObject, context: PlanContext) -> None:
    capabilities = _takes_everything()
    for kind, records in RECORDS.items():
        record: RecordMeta = data.draw(records)
        decision = decide(kind, capabilities)
        assert decision.mapping == "natural" and decision.variant is KIND_FHIR[kind].natural
        sent = mapped_resources(record, kind, decision, canonical_base=s.BASE, context=context)
        facade = resources_of(kind, record, s.BASE, context)
        assert sent == [r for r in facade if r["resourceType"] in decision.sent_types], kind
        assert sent[0]["resourceType"] == KIND_FHIR[kind].fhir_type


@settings(max_examples=10, deadline=None)
@given(record=s.enrollments())
def test_a_care_plan_without_goal_writes_loses_only_its_goal_reference(record: RecordMeta) -> None:
    goal_less = Capabilities(
        types={
            t: TypeSupport(frozenset({"create"}), identifier_search=True, update_create=False)
            for t in ("CarePlan", "Condition")
        },
        batch=False,
        transaction=False,
    )
    decision = decide(Kind.ENROLLMENTS, goal_less)
    assert decision.left_out == ("Goal",)
    context = PlanContext("at_risk", ("phq9_item9_positive",))
    care_plan, condition = mapped_resources(record, Kind.ENROLLMENTS, decision, canonical_base=s.BASE, context=context)
    served = resources_of(Kind.ENROLLMENTS, record, s.BASE, context)
    assert care_plan == {k: v for k, v in served[0].items() if k != "goal"} and "goal" in served[0]
    assert condition == served[1]


def _phq9(patient_id: str, item9: int) -> dict[str, object]:
    answers = [{"link_id": i, "value_integer": 1} for i in PHQ9_ITEMS[:8]]
    answers.append({"link_id": PHQ9_ITEMS[8], "value_integer": item9})
    authored = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    return questionnaire_body(patient_id, answers=answers, authored_at=authored)


def test_the_care_plan_an_ehr_receives_carries_the_plan_status_and_progress(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    tenant = sync_app.tenant()
    sync_app.target(tenant, sekmet.base_url, push=["patients", "enrollments"])
    api = sync_app.driver(tenant)
    patient_id = api.patient()
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    enrollment_id = api.create("enrollments", enrollment_body(patient_id, start_date=start))["id"]
    api.create("questionnaire-responses", _phq9(patient_id, item9=2))  # a positive item 9: at risk
    drain(sync_app, tenant)

    served = api.client.get(f"/fhir/CarePlan/{enrollment_id}", headers=api.headers).json()
    system = f"{sync_app.settings.canonical_base}/identifier/enrollment"
    with sekmet.client() as peer:
        found = peer.get("CarePlan", params={"identifier": f"{system}|{enrollment_id}"}).json()
    [copy] = [e["resource"] for e in found["entry"]]
    status_codes = [c["code"] for c in copy["extension"][0]["valueCodeableConcept"]["coding"]]
    assert status_codes[0] == "at_risk" and "phq9_item9_positive" in status_codes
    assert copy["extension"] == served["extension"]
    progress = [a.get("progress") for a in copy["activity"]]
    assert progress == [a.get("progress") for a in served["activity"]]
    assert any(p and "measurements" in p[0]["text"] for p in progress)


def test_sync_targets_are_administration_not_a_clinical_record_kind() -> None:
    assert SYNC_TARGETS not in RECORD_KINDS and not isinstance(SYNC_TARGETS, RecordKind)
    assert SYNC_TARGETS.fhir_type is None  # so its routes are role-only
    assert set(KIND_FHIR) == set(Kind)
    own = {kind for kind, entry in KIND_FHIR.items() if entry.of is None}
    assert {kind.kind for kind in RECORD_KINDS} == own
    # The others are sent from an enrollment's plan status: their outbox rows name enrollments.
    assert {entry.of for entry in KIND_FHIR.values() if entry.of is not None} == {Kind.ENROLLMENTS}
    assert set(Kind) - own == {Kind.URGENT_FINDINGS, Kind.PROGRESS_NOTES}


def test_a_dry_run_of_a_kind_that_is_not_a_record_kind_is_refused_by_name(sync_app: SyncApp) -> None:
    tenant = sync_app.tenant()
    target = sync_app.target(tenant, "http://127.0.0.1:9/fhir")
    admin = sync_app.driver(tenant, "admin")
    response = admin.client.post(
        f"/api/v1/sync/targets/{target}/dry-run",
        json={"record_kind": "sync/targets", "record_id": target},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "record_kind" and "'sync/targets' is not a record kind" in error["message"]


def test_the_ehr_care_plan_follows_a_status_that_moves_after_the_enrollment_was_sent(
    sync_app: SyncApp, sekmet: SekmetServer
) -> None:
    """The enrollment is sent once; a later PHQ-9 moves the status without changing the enrollment, and the EHR's
    copy follows it (the plan refresh queues the enrollment again when its CarePlan changed)."""
    tenant = sync_app.tenant()
    sync_app.target(tenant, sekmet.base_url, push=["patients", "enrollments"])
    api = sync_app.driver(tenant)
    patient_id = api.patient()
    start = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    enrollment_id = api.create("enrollments", enrollment_body(patient_id, start_date=start))["id"]
    drain(sync_app, tenant)
    system = f"{sync_app.settings.canonical_base}/identifier/enrollment"

    def ehr_status() -> str:
        with sekmet.client() as peer:
            found = peer.get("CarePlan", params={"identifier": f"{system}|{enrollment_id}"}).json()
        [copy] = [e["resource"] for e in found["entry"]]
        code: str = copy["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        return code

    assert ehr_status() != "at_risk"
    api.create("questionnaire-responses", _phq9(patient_id, item9=2))  # a positive item 9: at risk
    drain(sync_app, tenant)
    assert ehr_status() == "at_risk"
