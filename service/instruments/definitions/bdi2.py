"""BDI-II (Beck, Steer & Brown 1996): licensed (Pearson), so only an externally scored total is accepted."""

from __future__ import annotations

from service.instruments.instrument import Band, Instrument, Item

TOTAL_LOINC = "89209-1"  # LOINC "Beck Depression Inventory II total score [BDI]", per MII PRO IG
# ObservationDefinition mii-obsdef-pro-score-bdi-ii. unverified: not checked on a loinc.org page.

BDI_II = Instrument(
    key="bdi-ii",
    title="Beck Depression Inventory-II (BDI-II), total only",
    version="1.0.0",
    panel_loinc=None,
    total_loinc=TOTAL_LOINC,
    items=(Item(link_id=f"/{TOTAL_LOINC}", loinc=TOTAL_LOINC, text="BDI-II total score", integer_range=(0, 63)),),
    min_total=0,
    max_total=63,
    # BDI-II manual (Beck 1996) cut points.
    bands=(Band(0, 13, "minimal"), Band(14, 19, "mild"), Band(20, 28, "moderate"), Band(29, 63, "severe")),
    response_reduction=0.5,
    externally_scored=True,
)
