"""Publishing an instrument as a FHIR R4 Questionnaire, so EHRs and form fillers can render and score it.

Answer options carry the R4 core extension ordinalValue (http://hl7.org/fhir/R4/extension-ordinalvalue.html;
R5 renamed the concept itemWeight). Licensed instruments (BDI-II, HAM-D17) publish only their total item.
"""

from __future__ import annotations

from typing import Any

from .codes import LOINC, ORDINAL_VALUE_URL
from .instrument import AnswerOption, Instrument, Item


def questionnaire_resource(instrument: Instrument) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.key,
        "url": instrument.canonical,
        "version": instrument.version,
        "name": "".join(part.capitalize() for part in instrument.key.replace("/", "-").split("-")),
        "title": instrument.title,
        "status": "active",
        "subjectType": ["Patient"],
        "item": [_item(item) for item in instrument.items],
    }
    if instrument.panel_loinc:
        resource["code"] = [{"system": LOINC, "code": instrument.panel_loinc}]
    if instrument.has_total and not instrument.externally_scored:
        resource["item"].append(_total_item(instrument))
    return resource


def _item(item: Item) -> dict[str, Any]:
    published: dict[str, Any] = {"linkId": item.link_id, "text": item.text, "required": item.required}
    if item.loinc:
        published["code"] = [{"system": LOINC, "code": item.loinc}]
    if item.integer_range is not None:
        published["type"] = "integer"
        low, high = item.integer_range
        published["extension"] = [
            {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": low},
            {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": high},
        ]
    elif item.any_code:
        published["type"] = "open-choice"
    else:
        published["type"] = "choice"
        published["answerOption"] = [_option(option) for option in item.options]
    return published


def _option(option: AnswerOption) -> dict[str, Any]:
    coding: dict[str, Any] = {"code": option.code, "display": option.display}
    if option.system:
        coding = {"system": option.system, **coding}
    published: dict[str, Any] = {"valueCoding": coding}
    if option.score is not None:
        published["extension"] = [{"url": ORDINAL_VALUE_URL, "valueDecimal": option.score}]
    return published


def _total_item(instrument: Instrument) -> dict[str, Any]:
    total: dict[str, Any] = {
        "linkId": instrument.total_link_id,
        "text": f"{instrument.title} total score",
        "type": "integer",
        "readOnly": True,
        "required": False,
    }
    if instrument.total_loinc:
        total["code"] = [{"system": LOINC, "code": instrument.total_loinc}]
    return total
