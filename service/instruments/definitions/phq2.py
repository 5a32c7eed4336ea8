"""PHQ-2: the first two PHQ-9 items (Kroenke, Spitzer & Williams 2003, Med Care 41:1284)."""

from __future__ import annotations

from service.instruments.instrument import Band, Instrument, Item

from ._phq import FREQUENCY_OPTIONS

PHQ2 = Instrument(
    key="phq-2",
    title="Patient Health Questionnaire-2 (PHQ-2)",
    version="1.0.0",
    panel_loinc="55757-9",  # unverified: from CLINICAL.md, not confirmed on loinc.org
    total_loinc="55758-7",  # LOINC "PHQ-2 total score [Reported]" (seen in Synthea-generated records)
    items=(
        Item(
            link_id="/44250-9",
            loinc="44250-9",
            text="Little interest or pleasure in doing things",
            options=FREQUENCY_OPTIONS,
        ),
        Item(
            link_id="/44255-8",
            loinc="44255-8",
            text="Feeling down, depressed, or hopeless",
            options=FREQUENCY_OPTIONS,
        ),
    ),
    min_total=0,
    max_total=6,
    # A screen, not a severity scale: >= 3 is positive (Kroenke 2003; CLINICAL.md section 2).
    bands=(Band(0, 2, "negative screen"), Band(3, 6, "positive screen")),
)
