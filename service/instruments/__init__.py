"""Symptom-questionnaire instruments as data, their scoring, FHIR intake and FHIR publication.

Pure: imports nothing from the rest of the service, the database or the web layer.
"""

from __future__ import annotations

from .answers import Coding, ItemAnswer
from .codes import CANONICAL_BASE, QUESTIONNAIRE_BASE
from .external import find_registered, register_external_questionnaire
from .external_questionnaire import ExternalQuestionnaire
from .fhir_intake import (
    IntakeResponse,
    ResolvedAnswers,
    SentTotal,
    intake_questionnaire_response,
    item_answer,
    resolve_answers,
)
from .instrument import (
    AnswerOption,
    Band,
    Comparator,
    Domain,
    Instrument,
    Item,
    Proration,
    SafetyRule,
    Threshold,
    TotalAlert,
)
from .publication import questionnaire_resource
from .registry import (
    INSTRUMENTS,
    PANEL_TOTALS,
    TOTAL_CODES,
    instrument_for_canonical,
    instrument_for_item_codes,
    instrument_for_panel_code,
)
from .scoring import SafetyFinding, Score, ScoringError, resolve_ordinal, score_answers
from .sdc_fhirpath import calculated_total

__all__ = [
    "CANONICAL_BASE",
    "INSTRUMENTS",
    "PANEL_TOTALS",
    "QUESTIONNAIRE_BASE",
    "TOTAL_CODES",
    "AnswerOption",
    "Band",
    "Coding",
    "Comparator",
    "Domain",
    "ExternalQuestionnaire",
    "Instrument",
    "IntakeResponse",
    "Item",
    "ItemAnswer",
    "Proration",
    "ResolvedAnswers",
    "SafetyFinding",
    "SafetyRule",
    "Score",
    "ScoringError",
    "SentTotal",
    "Threshold",
    "TotalAlert",
    "calculated_total",
    "find_registered",
    "instrument_for_canonical",
    "instrument_for_item_codes",
    "instrument_for_panel_code",
    "intake_questionnaire_response",
    "item_answer",
    "questionnaire_resource",
    "register_external_questionnaire",
    "resolve_answers",
    "resolve_ordinal",
    "score_answers",
]
