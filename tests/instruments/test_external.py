"""Registered external Questionnaires (SDC, LHC-Forms, uwcirg): mapping, ordinals, FHIRPath totals."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fhir_mappings import MappingError
from service.instruments import (
    INSTRUMENTS,
    ExternalQuestionnaire,
    intake_questionnaire_response,
    register_external_questionnaire,
    score_answers,
)
from tests.examples_budget import examples
from tests.shared_fixtures import load_fixture

from .builders import LL358_3, PHQ9_CODES, coded_item, response

pytestmark = pytest.mark.fixtures

SDC = "fhir/sdc-questionnaire-sdc-profile-example-PHQ9.json"
LHC = "fhir/lhcforms-phq9-questionnaire-44249-1.json"
UWCIRG_GAD7 = "fhir/uwcirg-asbi-Questionnaire-GAD7.json"
SDC_SYSTEM = "http://hl7.org/fhir/uv/sdc/CodeSystem/CSPHQ9"
SDC_CODES = ("Not-at-all", "Several-days", "More than half the days", "Nearly every day")  # ordinals 0..3
# The SDC PHQ-9 has no LOINC item codes, so its items are mapped explicitly, in the PHQ-9's published order.
SDC_LINK_IDS = {f"H1/T1/Q{n}": f"/{code}" for n, code in enumerate(PHQ9_CODES, start=1)}
LHC_CANONICAL = "http://lhcforms.nlm.nih.gov/Questionnaire/44249-1-x"  # the file has no url of its own

picks = st.lists(st.integers(0, 3), min_size=9, max_size=9)


def register_sdc() -> ExternalQuestionnaire:
    return register_external_questionnaire(load_fixture(SDC), "phq-9", link_ids=SDC_LINK_IDS)


def register_lhc() -> ExternalQuestionnaire:
    return register_external_questionnaire(load_fixture(LHC), "phq-9", canonical=LHC_CANONICAL)


def sdc_response(external: ExternalQuestionnaire, scores: list[int]) -> dict[str, Any]:
    questions = [coded_item(f"H1/T1/Q{n}", SDC_CODES[s], SDC_SYSTEM) for n, s in enumerate(scores, start=1)]
    return response([{"linkId": "H1/T1", "item": questions}], external.key)


def lhc_response(external: ExternalQuestionnaire, scores: list[int], system: str | None) -> dict[str, Any]:
    items = [coded_item(f"/{code}", LL358_3[s], system) for code, s in zip(PHQ9_CODES, scores, strict=True)]
    return response(items, external.key)


def test_sdc_registration_reads_contained_value_set_ordinals() -> None:
    external = register_sdc()
    assert external.key == "http://hl7.org/fhir/uv/sdc/Questionnaire/questionnaire-sdc-profile-example-PHQ9|0.0.1"
    assert external.total_link_id == "H1/TS"
    assert external.ordinals["H1/T1/Q9"][f"{SDC_SYSTEM}|Nearly every day"] == 3


@settings(max_examples=examples(25), deadline=None)
@given(scores=picks)
def test_sdc_fhirpath_total_equals_our_ordinal_sum(scores: list[int]) -> None:
    external = register_sdc()
    intake = intake_questionnaire_response(sdc_response(external, scores), {external.key: external})
    score = score_answers(intake.instrument, intake.answers)
    assert intake.calculated_total == score.total == sum(scores)
    assert bool(score.safety_findings) == (scores[8] >= 1)


def test_sdc_answers_are_stored_as_loinc_codings_by_ordinal() -> None:
    external = register_sdc()
    intake = intake_questionnaire_response(sdc_response(external, [2] * 9), {external.key: external})
    first = intake.answers[0]
    assert first.link_id == "/44250-9"
    assert first.value_coding is not None and first.value_coding.code == "LA6570-1"


def test_bare_url_finds_the_versioned_registration() -> None:
    external = register_sdc()
    qr = sdc_response(external, [1] * 9)
    qr["questionnaire"] = external.canonical
    assert intake_questionnaire_response(qr, {external.key: external}).calculated_total == 9


def test_sdc_response_is_unknown_without_registration() -> None:
    external = register_sdc()
    with pytest.raises(MappingError) as raised:
        intake_questionnaire_response(sdc_response(external, [0] * 9))
    assert raised.value.location == "QuestionnaireResponse.questionnaire"


def test_sdc_code_not_in_its_value_set() -> None:
    external = register_sdc()
    qr = sdc_response(external, [0] * 9)
    qr["item"][0]["item"][4]["answer"][0]["valueCoding"]["code"] = "Always"
    with pytest.raises(MappingError) as raised:
        intake_questionnaire_response(qr, {external.key: external})
    assert raised.value.location == "QuestionnaireResponse.item[0].item[4].answer[0]"
    assert "H1/T1/Q5" in raised.value.message and "Always" in raised.value.message


def test_sdc_unmapped_items_must_be_named() -> None:
    with pytest.raises(MappingError) as raised:
        register_external_questionnaire(load_fixture(SDC), "phq-9")
    assert raised.value.location == "Questionnaire.item[0].item[0]" and "H1/T1/Q1" in raised.value.message


def test_lhc_forms_questionnaire_is_lenient_on_purpose() -> None:
    raw = load_fixture(LHC)
    # Strict R4 parsing rejects it: item[2].answerOption[1] has an optionPrefix valueString of 1 (a number).
    with pytest.raises(ValidationError, match="valueString"):
        Questionnaire.model_validate(raw)
    assert raw["item"][2]["answerOption"][1]["extension"][0]["valueString"] == 1
    # Registration reads only what scoring needs, so the quirk is ignored rather than fatal.
    external = register_lhc()
    assert external.ordinals["/44259-0"]["|LA6569-3"] == 1
    assert external.total_link_id == "/44261-6"
    assert external.link_ids["/69722-7"] == "/69722-7"


def test_lhc_forms_without_url_needs_a_canonical() -> None:
    with pytest.raises(MappingError) as raised:
        register_external_questionnaire(load_fixture(LHC), "phq-9")
    assert raised.value.location == "Questionnaire.url"


@settings(max_examples=examples(25), deadline=None)
@given(scores=picks, system=st.sampled_from([None, "http://loinc.org"]))
def test_lhc_fhirpath_total_equals_our_ordinal_sum(scores: list[int], system: str | None) -> None:
    external = register_lhc()
    intake = intake_questionnaire_response(lhc_response(external, scores, system), {external.key: external})
    assert intake.calculated_total == score_answers(intake.instrument, intake.answers).total == sum(scores)


def test_lhc_incomplete_response_fhirpath_counts_missing_as_zero_but_we_do_not() -> None:
    external = register_lhc()
    qr = lhc_response(external, [3] * 9, None)
    del qr["item"][0]
    intake = intake_questionnaire_response(qr, {external.key: external})
    score = score_answers(intake.instrument, intake.answers)
    assert intake.calculated_total == 24
    assert score.total is None and score.missing_items == ("/44250-9",)


def test_uwcirg_gad7_registration_uses_its_ordinals_and_ignores_cql() -> None:
    external = register_external_questionnaire(
        load_fixture(UWCIRG_GAD7), "gad-7", canonical="https://uwcirg.example/Questionnaire/CIRG-GAD7"
    )
    assert external.ordinals["/68509-9"]["|LA18938-3"] == 2
    items = [coded_item(link_id, "LA18938-3" if link_id == "/68509-9" else "LA6568-5") for link_id in external.link_ids]
    intake = intake_questionnaire_response(response(items, external.key), {external.key: external})
    score = score_answers(intake.instrument, intake.answers)
    assert score.item_scores["/68509-9"] == 2 and score.total == 2
    assert intake.calculated_total is None  # its calculatedExpression is CQL, which we do not evaluate


def test_ordinals_that_are_not_our_scores_are_refused_at_registration() -> None:
    questionnaire = copy.deepcopy(load_fixture(LHC))
    questionnaire["item"][0]["answerOption"][3]["extension"][1]["valueDecimal"] = 5
    with pytest.raises(MappingError) as raised:
        register_external_questionnaire(questionnaire, "phq-9", canonical=LHC_CANONICAL)
    assert raised.value.location == "Questionnaire.item[0]" and "[5]" in raised.value.message


def test_unevaluable_expression_is_refused_at_registration() -> None:
    questionnaire = copy.deepcopy(load_fixture(SDC))
    total = next(item for item in questionnaire["item"][0]["item"] if item["linkId"] == "H1/TS")
    total["extension"][0]["valueExpression"]["expression"] = "%resource.answers().value.noSuchFunction()"
    with pytest.raises(MappingError, match="noSuchFunction"):
        register_external_questionnaire(questionnaire, "phq-9", link_ids=SDC_LINK_IDS)


def test_registration_round_trips_through_json_for_per_tenant_storage() -> None:
    external = register_sdc()
    stored = ExternalQuestionnaire.model_validate_json(external.model_dump_json())
    assert stored == external and stored.instrument is INSTRUMENTS["phq-9"]


def test_wrong_resource_type_and_unknown_instrument() -> None:
    with pytest.raises(MappingError, match="resourceType"):
        register_external_questionnaire({"resourceType": "ValueSet"}, "phq-9")
    with pytest.raises(MappingError, match="unknown instrument 'phq-10'"):
        register_external_questionnaire(load_fixture(SDC), "phq-10", link_ids=SDC_LINK_IDS)
