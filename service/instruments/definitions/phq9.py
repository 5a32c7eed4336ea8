"""PHQ-9 (Kroenke, Spitzer & Williams 2001, J Gen Intern Med 16:606). Pfizer: no permission needed to
reproduce, so the item text is shipped."""

from __future__ import annotations

from service.instruments.codes import LOINC
from service.instruments.instrument import AnswerOption, Band, Instrument, Item, SafetyRule, Threshold

from ._phq import FREQUENCY_OPTIONS

# Item, panel and total codes: LOINC 44249-1 panel, as used by US Core 7.0.0 Questionnaire-phq-9-example.
_ITEMS = (
    ("44250-9", "Little interest or pleasure in doing things"),
    ("44255-8", "Feeling down, depressed, or hopeless"),
    ("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
    ("44254-1", "Feeling tired or having little energy"),
    ("44251-7", "Poor appetite or overeating"),
    (
        "44258-2",
        "Feeling bad about yourself - or that you are a failure or have let yourself or your family down",
    ),
    ("44252-5", "Trouble concentrating on things, such as reading the newspaper or watching television"),
    (
        "44253-3",
        "Moving or speaking so slowly that other people could have noticed? Or the opposite - "
        "being so fidgety or restless that you have been moving around a lot more than usual",
    ),
)
SELF_HARM_ITEM = "44260-8"  # LOINC; US Core 7.0.0 example linkId /44260-8

# Difficulty answers as coded in the LHC-Forms PHQ-9 (lforms-fhir-app cypress/fixtures/R4/phq9.json).
# unverified: LOINC answer-list id for 69722-7 not looked up; codes taken from that Questionnaire only.
_DIFFICULTY_OPTIONS = (
    AnswerOption(code="LA6572-7", display="Not difficult at all", score=None, system=LOINC),
    AnswerOption(code="LA6573-5", display="Somewhat difficult", score=None, system=LOINC),
    AnswerOption(code="LA6575-0", display="Very difficult", score=None, system=LOINC),
    AnswerOption(code="LA6574-3", display="Extremely difficult", score=None, system=LOINC),
)

PHQ9 = Instrument(
    key="phq-9",
    title="Patient Health Questionnaire-9 (PHQ-9)",
    version="1.0.0",
    panel_loinc="44249-1",  # LOINC; US Core 7.0.0 Questionnaire-phq-9-example code
    total_loinc="44261-6",  # LOINC; US Core 7.0.0 Observation-PHQ9-item-example-44261-6
    items=(
        *(Item(link_id=f"/{code}", loinc=code, text=text, options=FREQUENCY_OPTIONS) for code, text in _ITEMS),
        Item(
            link_id=f"/{SELF_HARM_ITEM}",
            loinc=SELF_HARM_ITEM,
            text="Thoughts that you would be better off dead, or of hurting yourself in some way",
            options=FREQUENCY_OPTIONS,
            safety=SafetyRule(min_score=1, reason="PHQ-9 item 9 (thoughts of death or self-harm) endorsed"),
        ),
        Item(
            link_id="/69722-7",
            loinc="69722-7",  # LOINC; US Core 7.0.0 Questionnaire-phq-9-example
            text="If you checked off any problems, how difficult have these problems made it for you to do "
            "your work, take care of things at home, or get along with other people?",
            options=_DIFFICULTY_OPTIONS,
            scored=False,
            required=False,
        ),
    ),
    min_total=0,
    max_total=27,
    # Kroenke 2001 severity bands, as listed in CLINICAL.md section 2.
    bands=(
        Band(0, 4, "minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 19, "moderately severe"),
        Band(20, 27, "severe"),
    ),
    remission=Threshold("<", 5),
    response_reduction=0.5,
    worsening_rise=5,
    # No proration: the PHQ-9 scoring instructions (phqscreeners.com) define the total only as a sum.
)
