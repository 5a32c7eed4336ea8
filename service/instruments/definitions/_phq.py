"""Answer list shared by the PHQ-9 and PHQ-2 items (LOINC LL358-3)."""

from __future__ import annotations

from service.instruments.codes import (
    LOINC,
    MORE_THAN_HALF_THE_DAYS,
    NEARLY_EVERY_DAY,
    NOT_AT_ALL,
    SEVERAL_DAYS,
)
from service.instruments.instrument import AnswerOption

# LL358-3 scores per LOINC and US Core 7.0.0 Questionnaire-phq-9-example (ordinalValue 0-3).
FREQUENCY_OPTIONS = (
    AnswerOption(code=NOT_AT_ALL, display="Not at all", score=0, system=LOINC),
    AnswerOption(code=SEVERAL_DAYS, display="Several days", score=1, system=LOINC),
    AnswerOption(code=MORE_THAN_HALF_THE_DAYS, display="More than half the days", score=2, system=LOINC),
    AnswerOption(code=NEARLY_EVERY_DAY, display="Nearly every day", score=3, system=LOINC),
)
