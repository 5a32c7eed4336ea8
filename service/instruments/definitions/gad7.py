"""GAD-7 (Spitzer et al. 2006, Arch Intern Med 166:1092). Pfizer: free to reproduce, so text is shipped."""

from __future__ import annotations

from service.instruments.codes import LOINC, NEARLY_EVERY_DAY, NOT_AT_ALL, SEVERAL_DAYS
from service.instruments.instrument import AnswerOption, Band, Instrument, Item, Threshold

from ._phq import FREQUENCY_OPTIONS

# LOINC 68509-9 scores 2 as "More days than not" LA18938-3, not LA6570-1 (uwcirg asbi-screening-app
# 1_Questionnaire-GAD7.json, ordinalValue 2); LA6570-1 is therefore NOT accepted on that item.
_WORRY_OPTIONS = (
    AnswerOption(code=NOT_AT_ALL, display="Not at all", score=0, system=LOINC),
    AnswerOption(code=SEVERAL_DAYS, display="Several days", score=1, system=LOINC),
    AnswerOption(code="LA18938-3", display="More days than not", score=2, system=LOINC),
    AnswerOption(code=NEARLY_EVERY_DAY, display="Nearly every day", score=3, system=LOINC),
)

# Item codes: LOINC panel 69737-5 members, as coded in the uwcirg GAD-7 Questionnaire.
_ITEMS = (
    ("69725-0", "Feeling nervous, anxious, or on edge", FREQUENCY_OPTIONS),
    ("68509-9", "Not being able to stop or control worrying", _WORRY_OPTIONS),
    ("69733-4", "Worrying too much about different things", FREQUENCY_OPTIONS),
    ("69734-2", "Trouble relaxing", FREQUENCY_OPTIONS),
    ("69735-9", "Being so restless that it is hard to sit still", FREQUENCY_OPTIONS),
    ("69689-8", "Becoming easily annoyed or irritable", FREQUENCY_OPTIONS),
    ("69736-7", "Feeling afraid, as if something awful might happen", FREQUENCY_OPTIONS),
)

GAD7 = Instrument(
    key="gad-7",
    title="Generalized Anxiety Disorder-7 (GAD-7)",
    version="1.0.0",
    panel_loinc="69737-5",  # LOINC; uwcirg GAD-7 Questionnaire.code
    total_loinc="70274-6",  # LOINC; HL7 PHR format IG value set observation-scored-assessment-score-codes
    items=tuple(Item(link_id=f"/{code}", loinc=code, text=text, options=options) for code, text, options in _ITEMS),
    min_total=0,
    max_total=21,
    # Spitzer 2006 cut points 5/10/15 (CLINICAL.md section 2).
    bands=(Band(0, 4, "minimal"), Band(5, 9, "mild"), Band(10, 14, "moderate"), Band(15, 21, "severe")),
    remission=Threshold("<", 5),
    response_reduction=0.5,
    worsening_rise=4,
)
