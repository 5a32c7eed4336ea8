"""What a unit of work remembers of its lookups (service/db/memo.py: the sync targets, the records a Bundle's entries
name) is forgotten when the unit or the savepoint that found it rolls back, and a target or a Questionnaire
registered in the unit is read again by the next write (issue #18: a lookup once per unit, not once per entry)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from service.db.memo import memo
from service.db.unit_of_work import unit_of_work
from service.intake import reference_resolver
from service.outbox import OutboxMessage
from service.questionnaires import QuestionnaireRegistration, register_questionnaire, registered_questionnaires
from service.record_store import store
from service.record_store.kinds import PATIENTS
from service.records.patient import PatientCreate
from service.settings import Settings
from service.sync.taking import system_context
from service.sync.target_kind import SYNC_TARGETS
from service.sync.targets import SyncTargetCreate
from tests.builders import patient_body
from tests.instruments.test_external import SDC, SDC_LINK_IDS
from tests.shared_fixtures import load_fixture
from tests.sync.sync_harness import LOOPBACK_HOSTS

LOOPBACK = {"sync_allowed_hosts": LOOPBACK_HOSTS, "sync_require_https": False}


def test_what_a_savepoint_found_is_forgotten_when_it_rolls_back(engine: Engine) -> None:
    with unit_of_work(engine) as unit:
        memo(unit)["kept"] = 1
        with unit.savepoint():
            memo(unit)["found in a savepoint that succeeds"] = 2
        with pytest.raises(RuntimeError), unit.savepoint():
            memo(unit)["found in a savepoint that fails"] = 3
            raise RuntimeError("the entry failed")
        assert memo(unit) == {}  # the failed savepoint may have undone what any answer was found in
        memo(unit)["after"] = 4
        unit.rollback()
        assert memo(unit) == {}


def test_a_target_written_in_the_unit_is_read_again_by_the_next_write(
    engine: Engine, settings: Settings, tenant: str
) -> None:
    # The target's URL is checked as any target's: a loopback peer is allowed the way the sync tests allow it.
    ctx = system_context(settings.model_copy(update=LOOPBACK), tenant, "test")
    with unit_of_work(engine) as unit:
        before, _ = store.create_record(unit, ctx, PATIENTS, PatientCreate.model_validate(patient_body()))
        target = SyncTargetCreate(name="Epic", base_url="http://127.0.0.1:9/fhir", push=["patients"])
        made, _ = store.create_record(unit, ctx, SYNC_TARGETS, target)
        after, _ = store.create_record(unit, ctx, PATIENTS, PatientCreate.model_validate(patient_body()))
        queued = unit.exec(select(OutboxMessage.record_id).where(col(OutboxMessage.target_id) == made.id)).all()
    assert before.id != after.id
    assert queued == [after.id]  # the patient written before the target was not queued for it; the one after was


def test_a_questionnaire_registered_in_the_unit_is_seen_by_the_next_response(engine: Engine, tenant: str) -> None:
    registration = QuestionnaireRegistration.model_validate(
        {"instrument": "phq-9", "questionnaire": load_fixture(SDC), "link_ids": SDC_LINK_IDS}
    )
    with unit_of_work(engine) as unit:
        assert registered_questionnaires(unit, tenant) == {}  # read, and kept for the unit
        made = register_questionnaire(unit, tenant_id=tenant, registration=registration)
        assert set(registered_questionnaires(unit, tenant)) == {made.canonical}


def test_a_reference_resolved_in_a_failed_savepoint_is_not_resolved_after_it(
    engine: Engine, settings: Settings, tenant: str
) -> None:
    """The resolver reads the unit's memo at each call: kept across a failed savepoint, it would name a patient the
    savepoint's rollback removed."""
    ctx = system_context(settings, tenant, "test")
    with unit_of_work(engine) as unit:
        resolve = reference_resolver(unit, tenant)
        with pytest.raises(RuntimeError), unit.savepoint():
            made, _ = store.create_record(unit, ctx, PATIENTS, PatientCreate.model_validate(patient_body()))
            assert resolve(f"Patient/{made.id}") == made.id
            raise RuntimeError("the entry failed after its patient was written")
        assert resolve(f"Patient/{made.id}") is None
