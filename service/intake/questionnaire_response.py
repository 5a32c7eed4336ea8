"""The QuestionnaireResponse intake: fhir_mappings reads it, the instruments resolve its answers.

Author, source and item text are kept as sent, and so is the sender's total with the item it came in, so a
response reads back the same whichever way it arrived (POST, Bundle, import, pull).
"""

from __future__ import annotations

from typing import Any

import fhir_mappings as fm
from service.instruments import resolve_answers
from service.questionnaires import registered_questionnaires
from service.records.questionnaire import QuestionnaireResponseCreate

from .context import Intake, refused, validated


def take_questionnaire_response(intake: Intake, resource: dict[str, Any]) -> QuestionnaireResponseCreate:
    try:
        sent = fm.read_response(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            resolve_reference=intake.resolve,
            source_system=intake.source_system,
        )
        resolved = resolve_answers(
            resource,
            sent.answers,
            canonical=sent.questionnaire,
            registered=registered_questionnaires(intake.session, intake.tenant_id),
            ours=sent.instrument,
        )
    except fm.MappingError as error:
        raise refused(error) from None
    key = resolved.instrument.key
    total = resolved.total
    body = {
        **sent.header,
        "instrument": key,
        "questionnaire": fm.stored_questionnaire(sent.questionnaire, intake.canonical_base, key),
        "answers": [a.model_dump(mode="json", exclude_none=True) for a in resolved.answers],
    }
    if total is not None:
        body["sent_total"] = total.value
        body["sent_total_item"] = {
            "link_id": total.link_id,
            "text": total.text,
            "position": total.position,
            "value_type": total.value_type,
        }
    return validated(QuestionnaireResponseCreate, body, "QuestionnaireResponse")
