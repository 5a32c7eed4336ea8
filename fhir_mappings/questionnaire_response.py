"""Questionnaire response → QuestionnaireResponse, plus score Observations when the service has scored it.

The QuestionnaireResponse names our published Questionnaire (<base>/Questionnaire/<instrument>) unless the
record names another; the instrument key always travels in our instrument extension. Scores become a
total-score Observation (LOINC total code when the instrument has one, else our instrument-total code) and one
Observation per safety-item finding, each derivedFrom the response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from .codes import LOINC, OBSERVATION_CATEGORY
from .definitions import INSTRUMENT, KETAMINE_SESSION, OBSERVATION, SENT_TOTAL, coding, extension_url
from .identity import base_resource, instant, reference, resource_id
from .records import ItemAnswerLike, QuestionnaireResponseRecord, ScoreLike, TotalItemLike
from .release import Observation, QuestionnaireResponse, build

# Our author when a clinician recorded a response and we do not know which one (inbound reads it as no author).
CLINICIAN_PLACEHOLDER: Final = {"type": "Practitioner", "display": "Clinician"}
_SURVEY: Final = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
# LOINC codes are digits, a hyphen and a check digit; our PHQ/GAD link ids are "/<LOINC>".
_LOINC_LINK_ID: Final = re.compile(r"/?(\d{1,7}-\d)")


@dataclass(frozen=True, slots=True)
class ResponseResources:
    response: QuestionnaireResponse
    observations: tuple[Observation, ...]

    def all(self) -> list[Any]:
        return [self.response, *self.observations]


def questionnaire_canonical(canonical_base: str, instrument: str) -> str:
    return f"{canonical_base}/Questionnaire/{instrument}"


def answer_value(answer: ItemAnswerLike) -> dict[str, Any]:
    if answer.value_coding is not None:
        value: dict[str, Any] = {"code": answer.value_coding.code}
        if answer.value_coding.system is not None:
            value["system"] = answer.value_coding.system
        if answer.value_coding.display is not None:
            value["display"] = answer.value_coding.display
        return {"valueCoding": value}
    if answer.value_integer is not None:
        return {"valueInteger": answer.value_integer}
    if answer.value_decimal is not None:
        return {"valueDecimal": answer.value_decimal}
    if answer.value_string is not None:
        return {"valueString": answer.value_string}
    if answer.value_boolean is not None:
        return {"valueBoolean": answer.value_boolean}
    raise ValueError(f"answer to {answer.link_id!r} has no value")


def response_resources(
    record: QuestionnaireResponseRecord,
    *,
    canonical_base: str,
    score: ScoreLike | None = None,
    total_loinc: str | None = None,
) -> ResponseResources:
    """score: the service's Score of this response; total_loinc: the instrument's LOINC total code, if any."""
    subject = reference("Patient", record.patient_id)
    summary = f"{record.instrument} response ({record.status})"
    response = base_resource("QuestionnaireResponse", canonical_base, "questionnaire-response", record, summary)
    extensions: list[dict[str, Any]] = response["extension"]
    extensions.append({"url": extension_url(canonical_base, INSTRUMENT), "valueCode": record.instrument})
    if record.sent_total is not None and record.sent_total_item is None:
        extensions.append({"url": extension_url(canonical_base, SENT_TOTAL), "valueDecimal": record.sent_total})
    if record.ketamine_administration_id is not None:
        extensions.append(
            {
                "url": extension_url(canonical_base, KETAMINE_SESSION),
                "valueReference": reference("MedicationAdministration", record.ketamine_administration_id),
            }
        )
    response |= {
        "extension": extensions,
        "questionnaire": record.questionnaire or questionnaire_canonical(canonical_base, record.instrument),
        "status": record.status,
        "subject": subject,
        "authored": instant(record.authored_at),
        "item": _items(record),
    }
    response |= _parties(record, subject)
    if record.enrollment_id is not None:
        response["basedOn"] = [reference("CarePlan", record.enrollment_id)]
    if record.cbt_session_id is not None:
        response["encounter"] = reference("Encounter", record.cbt_session_id)
    observations = _score_observations(record, canonical_base, score, total_loinc) if score is not None else []
    return ResponseResources(response=build(QuestionnaireResponse, response), observations=tuple(observations))


def _items(record: QuestionnaireResponseRecord) -> list[dict[str, Any]]:
    """The answers, item text as sent, and the sender's total back in the item (and place) it came in."""
    items = [_item(a.link_id, a.text, answer_value(a)) for a in record.answers]
    total, where = record.sent_total, record.sent_total_item
    if total is not None and where is not None:
        items.insert(min(where.position, len(items)), _item(where.link_id, where.text, _total_value(total, where)))
    return items


def _item(link_id: str, text: str | None, value: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, **({"text": text} if text is not None else {}), "answer": [value]}


def _total_value(total: float, where: TotalItemLike) -> dict[str, Any]:
    whole = float(total).is_integer()
    if where.value_type == "valueInteger" and whole:
        return {"valueInteger": int(total)}
    if where.value_type == "valueString":
        return {"valueString": f"{total:g}"}
    if where.value_type == "valueQuantity":
        return {"valueQuantity": {"value": total}}
    return {"valueDecimal": total}


def _parties(record: QuestionnaireResponseRecord, subject: dict[str, Any]) -> dict[str, Any]:
    """author and source as sent; when none was sent, what the author kind says."""
    sent = {
        key: {k: v for k in ("reference", "type", "display") if (v := getattr(party, k)) is not None}
        for key, party in (("author", record.author), ("source", record.answered_by))
        if party is not None
    }
    if sent:
        return sent
    if record.author_kind == "patient":
        return {"author": subject, "source": subject}
    # We know a clinician recorded it, not which one: a typed reference with a display only.
    return {"author": dict(CLINICIAN_PLACEHOLDER)}


def _score_observations(
    record: QuestionnaireResponseRecord, canonical_base: str, score: ScoreLike, total_loinc: str | None
) -> list[Observation]:
    derived = [{"reference": f"QuestionnaireResponse/{resource_id(record.id)}"}]
    common = {
        "status": "entered-in-error"
        if record.status == "entered-in-error"
        else ("final" if score.complete else "preliminary"),
        "category": [_SURVEY],
        "subject": reference("Patient", record.patient_id),
        "effectiveDateTime": instant(record.authored_at),
        "derivedFrom": derived,
    }
    if record.enrollment_id is not None:
        common["basedOn"] = [reference("CarePlan", record.enrollment_id)]
    found: list[Observation] = []
    if score.total is not None:
        if total_loinc is not None:
            code = {"coding": [{"system": LOINC, "code": total_loinc}], "text": f"{record.instrument} total score"}
        else:
            code = {
                "coding": [coding(canonical_base, OBSERVATION, "instrument-total")],
                "text": f"{record.instrument} total score",
            }
        head = base_resource(
            "Observation",
            canonical_base,
            "questionnaire-response",
            record,
            f"{record.instrument} total {score.total:g}",
            role="total",
        )
        value = (
            {"valueInteger": int(score.total)}
            if float(score.total).is_integer()
            else {"valueQuantity": {"value": score.total}}
        )
        severity = {"interpretation": [{"text": score.severity}]} if score.severity else {}
        if not score.items_reported:
            # Said on the total itself: its items (PHQ-9 item 9) are unknown, not 0 (CLINICAL.md section 2).
            severity["note"] = [{"text": "items not reported: the total was sent without its item answers"}]
        found.append(build(Observation, head | common | {"code": code} | value | severity))
    items = [f for f in score.safety_findings if f.link_id is not None]
    for n, finding in enumerate(items):
        link_id = str(finding.link_id)
        match = _LOINC_LINK_ID.fullmatch(link_id)
        item_code = [{"system": LOINC, "code": match.group(1)}] if match else []
        code = {
            "coding": [*item_code, coding(canonical_base, OBSERVATION, "safety-item")],
            "text": f"{record.instrument} item {link_id}",
        }
        head = base_resource(
            "Observation", canonical_base, "questionnaire-response", record, finding.reason, role=f"safety-{n}"
        )
        value = (
            {"valueInteger": int(finding.value)}
            if float(finding.value).is_integer()
            else {"valueQuantity": {"value": finding.value}}
        )
        extra: dict[str, Any] = {"interpretation": [{"text": finding.reason}]}
        if finding.code:
            extra["note"] = [{"text": f"answer code {finding.code}"}]
        found.append(build(Observation, head | common | {"code": code} | value | extra))
    return found
