"""C-SSRS screener, recent (Posner et al. 2011, Am J Psychiatry 168:1266). The Columbia Lighthouse Project
allows free use of the screener questions, so they are shipped.

Which LOINC code is which question was read from the ONC/SAMHSA US Behavioral Health Profiles example
QuestionnaireResponse C-SSRS-example-1 (item text next to each linkId) and LOINC panel 93245-9.
"""

from __future__ import annotations

from service.instruments.codes import LOINC, NO, YES
from service.instruments.instrument import AnswerOption, Instrument, Item, SafetyRule

_YES_NO = (
    AnswerOption(code=YES, display="Yes", score=1, system=LOINC),
    AnswerOption(code=NO, display="No", score=0, system=LOINC),
)
_HIGH_RISK = "C-SSRS high risk"


def _question(loinc: str, text: str, *, required: bool, high_risk: str | None = None) -> Item:
    return Item(
        link_id=f"/{loinc}",
        loinc=loinc,
        text=text,
        options=_YES_NO,
        yes_no=True,
        # Skip logic: Q3-Q5 are asked only after a yes to Q2, the 3-month question only after a yes to Q6.
        required=required,
        safety=SafetyRule(min_score=1, reason=f"{_HIGH_RISK}: {high_risk}") if high_risk else None,
    )


CSSRS_SCREENER = Instrument(
    key="c-ssrs-screener",
    title="Columbia-Suicide Severity Rating Scale, screener - recent (C-SSRS)",
    version="1.0.0",
    # LOINC 93373-9 "Columbia - suicide severity rating scale screener - recent [C-SSRS]".
    # unverified: seen in LHC-Forms/third-party Questionnaires, not on a loinc.org page.
    panel_loinc="93373-9",
    total_loinc=None,  # the screener has no total; 93374-7 is a risk level, kept as an unscored item
    items=(
        _question(
            "93246-7",
            "Have you wished you were dead or wished you could go to sleep and not wake up?",
            required=True,
        ),
        _question("93247-5", "Have you actually had any thoughts of killing yourself?", required=True),
        _question("93248-3", "Have you been thinking about how you might do this?", required=False),
        _question(
            "93249-1",
            "Have you had these thoughts and had some intention of acting on them?",
            required=False,
            high_risk="suicidal intent (Q4)",
        ),
        _question(
            "93250-9",
            "Have you started to work out or worked out the details of how to kill yourself? "
            "Do you intend to carry out this plan?",
            required=False,
            high_risk="suicidal intent with plan (Q5)",
        ),
        _question(
            "93267-3",
            "Have you ever done anything, started to do anything, or prepared to do anything to end your life?",
            required=True,
        ),
        _question(
            "93269-9",
            "Was this within the past 3 months?",
            required=False,
            high_risk="suicidal behaviour in the past 3 months (Q6)",
        ),
        Item(
            link_id="/93374-7",
            loinc="93374-7",  # LOINC "Suicide risk level" (class SURVEY.CSSRS); ONC BHP example
            text="Suicide risk level",
            # The sender's own conclusion; we derive risk from the answers, so its code list is not ours.
            scored=False,
            required=False,
            any_code=True,
        ),
    ),
    min_total=0,
    max_total=0,
    has_total=False,
)
