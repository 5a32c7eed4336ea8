"""Questionnaire responses: scoring on write, and registered Questionnaires (FHIR intake: service/intake).

Scores are computed once, when a response is stored, and kept beside the answers: the plan status and the
coordinator pages read them and never rescore.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fhir_mappings import MappingError
from service.audit_trail import RequestContext
from service.clock import now_utc
from service.db.memo import forget, remembered
from service.errors import FieldProblem, InvalidRequest, RecordConflict, invalid
from service.instruments import (
    INSTRUMENTS,
    ExternalQuestionnaire,
    Instrument,
    ItemAnswer,
    ScoringError,
    register_external_questionnaire,
    score_answers,
)
from service.records.base import ApiModel, Text
from service.records.questionnaire import RegisteredQuestionnaire

SCORE_COLUMNS = (
    "total",
    "severity",
    "complete",
    "missing_items",
    "item_scores",
    "safety_findings",
    "total_mismatch",
    "instrument_version",
    "items_reported",
)


def scored_columns(session: Session, ctx: RequestContext, columns: dict[str, Any]) -> dict[str, Any]:
    """The response's columns with its score added; answers are refused by item when they cannot be scored."""
    instrument = INSTRUMENTS.get(columns["instrument"])
    if instrument is None:
        raise invalid("instrument", f"unknown instrument {columns['instrument']!r}; known: {', '.join(INSTRUMENTS)}")
    answers = [_canonical_link_id(instrument, ItemAnswer.model_validate(a)) for a in columns["answers"]]
    try:
        score = score_answers(instrument, answers, sent_total=columns.get("sent_total"))
    except ScoringError as error:
        position = next((n for n, a in enumerate(answers) if a.link_id == error.link_id), None)
        raise invalid(f"answers.{position}" if position is not None else "answers", str(error)) from None
    return {
        **columns,
        "answers": [a.model_dump(mode="json", exclude_none=True) for a in answers],
        "total": score.total,
        "severity": score.severity,
        "complete": score.complete,
        "missing_items": list(score.missing_items),
        "item_scores": dict(score.item_scores),
        "safety_findings": [f.model_dump(mode="json") for f in score.safety_findings],
        "total_mismatch": score.total_mismatch,
        "instrument_version": instrument.version,
        "items_reported": score.items_reported,
    }


def _canonical_link_id(instrument: Instrument, answer: ItemAnswer) -> ItemAnswer:
    """Senders may name an item by our linkId (/44250-9) or by its bare LOINC code (44250-9)."""
    if instrument.item(answer.link_id) is not None:
        return answer
    item = instrument.item_for_loinc(answer.link_id)
    return answer if item is None else answer.model_copy(update={"link_id": item.link_id})


def score_from_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """The stored score columns folded into the `score` object of the API shape."""
    values = dict(columns)
    values["score"] = {name: values.pop(name) for name in SCORE_COLUMNS}
    return values


# ---- registered external Questionnaires -----------------------------------------------------------------------


class QuestionnaireRegistration(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "instrument": "phq-9",
                    "canonical": "http://lhcforms.nlm.nih.gov/Questionnaire/44249-1-x",
                    "questionnaire": {"resourceType": "Questionnaire", "status": "active", "item": ["…"]},
                }
            ]
        }
    )

    instrument: Text = Field(description="The instrument its responses are scored as, e.g. phq-9")
    questionnaire: dict[str, Any] = Field(description="The FHIR R4 Questionnaire as the forms tool publishes it")
    canonical: Text | None = Field(default=None, description="Canonical URL, when the Questionnaire has no url")
    link_ids: dict[str, str | None] | None = Field(
        default=None, description="Their linkId -> our item linkId (null to ignore an item), when codes do not say"
    )


class RegisteredQuestionnairePublic(BaseModel):
    id: str
    canonical: str
    instrument: str
    items_mapped: int


def register_questionnaire(
    session: Session, *, tenant_id: str, registration: QuestionnaireRegistration
) -> RegisteredQuestionnairePublic:
    try:
        external = register_external_questionnaire(
            registration.questionnaire,
            registration.instrument,
            canonical=registration.canonical,
            link_ids=registration.link_ids,
        )
    except MappingError as error:
        raise InvalidRequest(
            [FieldProblem(f"questionnaire: {error.location}", error.message, issue_code=error.code)]
        ) from None
    row = RegisteredQuestionnaire(
        tenant_id=tenant_id,
        created_at=now_utc(),
        canonical=external.key,
        instrument=external.instrument_key,
        mapping=external.model_dump(mode="json"),
    )
    try:
        with session.begin_nested():  # a duplicate fails on the unique key; the caller's transaction goes on
            session.add(row)
            session.flush()
    except IntegrityError:
        raise RecordConflict(f"a Questionnaire {external.key!r} is already registered") from None
    forget(session, key_prefix=_REGISTERED)
    return _public(row)


def list_registered(session: Session, *, tenant_id: str) -> list[RegisteredQuestionnairePublic]:
    rows = session.exec(
        select(RegisteredQuestionnaire)
        .where(col(RegisteredQuestionnaire.tenant_id) == tenant_id)
        .order_by(col(RegisteredQuestionnaire.created_at))
    )
    return [_public(row) for row in rows]


def registered_questionnaires(session: Session, tenant_id: str) -> dict[str, ExternalQuestionnaire]:
    """The tenant's registered Questionnaires, read once per unit of work (every response of a Bundle asks; a
    registration in the unit forgets them)."""

    def look_up() -> dict[str, ExternalQuestionnaire]:
        rows = session.exec(select(RegisteredQuestionnaire).where(col(RegisteredQuestionnaire.tenant_id) == tenant_id))
        return {row.canonical: ExternalQuestionnaire.model_validate(row.mapping) for row in rows}

    return remembered(session, (_REGISTERED, tenant_id), look_up)


_REGISTERED = "registered questionnaires"


def _public(row: RegisteredQuestionnaire) -> RegisteredQuestionnairePublic:
    return RegisteredQuestionnairePublic(
        id=row.id, canonical=row.canonical, instrument=row.instrument, items_mapped=len(row.mapping["link_ids"])
    )
