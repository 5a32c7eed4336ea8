"""Intake of real QuestionnaireResponses (US Core PHQ-9, ONC BHP C-SSRS) and of fixture variants."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_mappings import MappingError
from service.instruments import INSTRUMENTS, intake_questionnaire_response, score_answers
from tests.shared_fixtures import load_fixture

from .builders import LL358_3, PHQ9_CODES, coded_item, response

pytestmark = pytest.mark.fixtures

US_CORE_QR = "fhir/uscore7-QuestionnaireResponse-phq-9-example.json"
CSSRS_QR = "fhir/onc-bhp-QuestionnaireResponse-C-SSRS-example-1.json"


def us_core_qr() -> dict[str, Any]:
    return copy.deepcopy(load_fixture(US_CORE_QR))


def test_us_core_phq9_scores_12_and_agrees_with_its_sent_total() -> None:
    intake = intake_questionnaire_response(us_core_qr())
    assert intake.instrument is INSTRUMENTS["phq-9"]
    assert intake.questionnaire == "http://hl7.org/fhir/us/core/Questionnaire/phq-9-example"
    assert intake.status == "completed" and intake.subject_reference == "Patient/example"
    assert intake.authored == datetime(2022, 11, 29, 20, 50, 32, 718000, tzinfo=UTC)
    score = score_answers(intake.instrument, intake.answers, sent_total=intake.sent_total)
    assert (score.total, score.sent_total, score.total_mismatch) == (12, 12.0, False)
    assert score.item_scores["/44260-8"] == 0 and score.safety_findings == ()
    assert (score.severity, score.complete, score.remission) == ("moderate", True, False)


def test_us_core_phq9_with_a_wrong_sent_total_is_kept_and_flagged() -> None:
    qr = us_core_qr()
    total = next(item for item in qr["item"] if item["linkId"] == "/44261-6")
    total["answer"] = [{"valueDecimal": 14}]
    intake = intake_questionnaire_response(qr)
    score = score_answers(intake.instrument, intake.answers, sent_total=intake.sent_total)
    assert (score.total, score.sent_total, score.total_mismatch) == (12, 14.0, True)


def test_phq9_answered_with_integers_and_item9_endorsed() -> None:
    scores = [0, 1, 2, 3, 0, 1, 2, 3, 1]
    items = [
        {"linkId": f"/{code}", "answer": [{"valueInteger": s}]} for code, s in zip(PHQ9_CODES, scores, strict=True)
    ]
    intake = intake_questionnaire_response(response(items, INSTRUMENTS["phq-9"].canonical))
    score = score_answers(intake.instrument, intake.answers)
    assert score.total == 13
    assert [(f.link_id, f.value) for f in score.safety_findings] == [("/44260-8", 1)]


def test_onc_bhp_cssrs_example_is_not_high_risk() -> None:
    # Every question is answered "No" (LA32-8): no intent (Q4, Q5), no behaviour in the past 3 months, so no
    # high-risk finding. The sender's own risk level 93374-7 ("Low", LA9194-7) is kept as an unscored answer.
    intake = intake_questionnaire_response(load_fixture(CSSRS_QR))
    assert intake.instrument is INSTRUMENTS["c-ssrs-screener"]
    score = score_answers(intake.instrument, intake.answers)
    assert score.complete and score.safety_findings == () and score.total is None
    risk = next(a for a in intake.answers if a.link_id == "/93374-7")
    assert risk.value_coding is not None and risk.value_coding.code == "LA9194-7"


def test_onc_bhp_cssrs_with_recent_behaviour_is_high_risk() -> None:
    qr = copy.deepcopy(load_fixture(CSSRS_QR))
    for item in qr["item"]:
        if item["linkId"] in ("/93267-3", "/93269-9"):
            item["answer"] = [{"valueCoding": {"system": "http://loinc.org", "code": "LA33-6", "display": "Yes"}}]
    intake = intake_questionnaire_response(qr)
    findings = score_answers(intake.instrument, intake.answers).safety_findings
    assert [f.link_id for f in findings] == ["/93269-9"] and findings[0].code == "LA33-6"


def test_uwcirg_gad7_codes_without_system_score_by_ordinal() -> None:
    questionnaire = load_fixture("fhir/uwcirg-asbi-Questionnaire-GAD7.json")
    choice_items = [item for item in questionnaire["item"] if item["type"] == "choice"]
    # Answer each item with the option whose ordinalValue is 2: LA18938-3 on 68509-9, LA6570-1 elsewhere.
    items = []
    for item in choice_items:
        option = next(o for o in item["answerOption"] if o["extension"][1]["valueDecimal"] == 2)
        items.append({"linkId": item["linkId"], "answer": [{"valueCoding": option["valueCoding"]}]})
    intake = intake_questionnaire_response(response(items, "Questionnaire/CIRG-GAD7"))
    assert intake.instrument is INSTRUMENTS["gad-7"]
    score = score_answers(intake.instrument, intake.answers)
    assert score.item_scores["/68509-9"] == 2
    assert (score.total, score.severity) == (14, "moderate")


def test_loinc_panel_canonical_is_recognised() -> None:
    items = [coded_item("/44250-9", LL358_3[1]), coded_item("/44255-8", LL358_3[2])]
    intake = intake_questionnaire_response(response(items, "http://loinc.org/q/44249-1"))
    assert intake.instrument is INSTRUMENTS["phq-9"]
    assert not score_answers(intake.instrument, intake.answers).complete


def test_nested_groups_are_read() -> None:
    items = [{"linkId": "group", "item": [coded_item("/44250-9", LL358_3[3]), coded_item("/44255-8", LL358_3[0])]}]
    intake = intake_questionnaire_response(response(items))
    assert intake.instrument is INSTRUMENTS["phq-2"]
    assert score_answers(intake.instrument, intake.answers).total == 3


def error_for(resource: Any) -> MappingError:
    with pytest.raises(MappingError) as raised:
        intake_questionnaire_response(resource)
    assert isinstance(raised.value, ValueError)
    return raised.value


def test_wrong_resource_type() -> None:
    error = error_for({"resourceType": "Observation", "status": "final"})
    assert error.location == "QuestionnaireResponse.resourceType" and "Observation" in error.message


def test_unknown_questionnaire() -> None:
    error = error_for(response([coded_item("q1", "a")], "http://example.org/Questionnaire/mystery"))
    assert error.location == "QuestionnaireResponse.questionnaire" and "mystery" in error.message


def test_answer_not_among_options_is_located() -> None:
    qr = us_core_qr()
    qr["item"][3]["answer"][0]["valueCoding"]["code"] = "LA0000-0"
    error = error_for(qr)
    assert error.location == "QuestionnaireResponse.item[3].answer[0]"
    assert "/44254-1" in error.message and "LA0000-0" in error.message


def test_out_of_range_integer_is_located() -> None:
    qr = us_core_qr()
    qr["item"][0]["answer"] = [{"valueInteger": 7}]
    error = error_for(qr)
    assert error.location == "QuestionnaireResponse.item[0].answer[0]" and "integer 7" in error.message


def test_duplicate_link_id() -> None:
    qr = us_core_qr()
    qr["item"].append(copy.deepcopy(qr["item"][0]))
    error = error_for(qr)
    assert error.location == "QuestionnaireResponse.item[11].linkId" and "/44250-9" in error.message


@pytest.mark.parametrize(
    ("mutate", "location"),
    [
        (lambda qr: qr.update(item={"linkId": "x"}), "QuestionnaireResponse.item"),
        (lambda qr: qr["item"][0].pop("linkId"), "QuestionnaireResponse.item[0].linkId"),
        (
            lambda qr: qr["item"][0]["answer"][0].update(valueInteger=1),
            "QuestionnaireResponse.item[0].answer[0]",
        ),
        (
            lambda qr: qr["item"][0]["answer"].append({"valueInteger": 1}),
            "QuestionnaireResponse.item[0].answer",
        ),
        (
            lambda qr: qr["item"][0].update(answer=[{"valueDate": "2024-01-01"}]),
            "QuestionnaireResponse.item[0].answer[0]",
        ),
        (
            lambda qr: qr["item"][9].update(answer=[{"valueString": "twelve"}]),
            "QuestionnaireResponse.item[9].answer[0]",
        ),
        (lambda qr: qr.update(status="done"), "QuestionnaireResponse.status"),
        (lambda qr: qr.update(authored="2022-11"), "QuestionnaireResponse.authored"),
        (lambda qr: qr.update(authored="2022-11-29T20:50:32"), "QuestionnaireResponse.authored"),
    ],
)
def test_malformed_structure(mutate: Any, location: str) -> None:
    qr = us_core_qr()
    mutate(qr)
    assert error_for(qr).location == location


def test_not_an_object() -> None:
    assert error_for(["QuestionnaireResponse"]).location == "QuestionnaireResponse"
