"""Published Questionnaires parse as R4 (fhir.resources R4B, fhirkit) and round-trip through intake."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

from service.instruments import (
    INSTRUMENTS,
    intake_questionnaire_response,
    questionnaire_resource,
    score_answers,
)

from .builders import response

ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"


@pytest.mark.parametrize("key", list(INSTRUMENTS))
def test_published_questionnaire_is_valid_r4(key: str) -> None:
    published = questionnaire_resource(INSTRUMENTS[key])
    parsed = Questionnaire.model_validate(published)
    assert parsed.url == INSTRUMENTS[key].canonical
    fhirkit = pytest.importorskip("fhirkit")
    assert [str(issue) for issue in fhirkit.validate(published)] == []


def test_phq9_is_loinc_coded_with_ordinal_values() -> None:
    published = questionnaire_resource(INSTRUMENTS["phq-9"])
    assert published["code"] == [{"system": "http://loinc.org", "code": "44249-1"}]
    first = published["item"][0]
    assert first["linkId"] == "/44250-9" and first["code"][0]["code"] == "44250-9"
    options = [(o["valueCoding"]["code"], o["extension"][0]) for o in first["answerOption"]]
    assert options[2] == ("LA6570-1", {"url": ORDINAL_VALUE, "valueDecimal": 2})
    assert published["item"][-1]["linkId"] == "/44261-6" and published["item"][-1]["readOnly"]


def test_licensed_instruments_publish_only_a_total() -> None:
    for key in ("bdi-ii", "ham-d17"):
        items = questionnaire_resource(INSTRUMENTS[key])["item"]
        assert len(items) == 1 and items[0]["type"] == "integer"


@pytest.mark.parametrize("key", [k for k, i in INSTRUMENTS.items() if i.has_total])
def test_answering_our_published_questionnaire_round_trips(key: str) -> None:
    instrument = INSTRUMENTS[key]
    published = questionnaire_resource(instrument)
    items = []
    for item in published["item"]:
        if item.get("readOnly") or item["type"] == "integer":
            items.append({"linkId": item["linkId"], "answer": [{"valueInteger": instrument.max_total}]})
        elif item["required"] and item["answerOption"][-1].get("extension"):
            top = max(item["answerOption"], key=lambda o: o["extension"][0]["valueDecimal"])
            items.append({"linkId": item["linkId"], "answer": [{"valueCoding": top["valueCoding"]}]})
    intake = intake_questionnaire_response(response(items, f"{published['url']}|{published['version']}"))
    assert intake.instrument is instrument
    score = score_answers(instrument, intake.answers, sent_total=intake.sent_total)
    assert score.total == instrument.max_total and not score.total_mismatch
