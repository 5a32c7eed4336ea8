"""HAM-D17 (Hamilton 1960, J Neurol Neurosurg Psychiatry 23:56): scored by the rater, total only.

Severity bands are deliberately absent: published cut-offs disagree (e.g. Zimmerman 2013 vs. APA handbook).
"""

from __future__ import annotations

from service.instruments.instrument import Instrument, Item

HAMD17 = Instrument(
    key="ham-d17",
    title="Hamilton Depression Rating Scale, 17 items (HAM-D17), total only",
    version="1.0.0",
    panel_loinc=None,
    total_loinc=None,  # unverified: no LOINC HAM-D17 total found
    items=(Item(link_id="ham-d17-total", text="HAM-D17 total score", integer_range=(0, 52)),),
    min_total=0,
    max_total=52,
    response_reduction=0.5,
    externally_scored=True,
)
