"""MADRS, clinician-rated (Montgomery & Asberg 1979, Br J Psychiatry 134:382).

Only the ten item headings are shipped (item descriptions and anchors are not reproduced).
"""

from __future__ import annotations

from service.instruments.codes import CODESYSTEM_BASE
from service.instruments.instrument import Band, Instrument, Item, Threshold, numbered_options

_OPTIONS = numbered_options(f"{CODESYSTEM_BASE}/madrs", tuple(str(score) for score in range(7)))
_HEADINGS = (
    "Apparent sadness",
    "Reported sadness",
    "Inner tension",
    "Reduced sleep",
    "Reduced appetite",
    "Concentration difficulties",
    "Lassitude",
    "Inability to feel",
    "Pessimistic thoughts",
    "Suicidal thoughts",
)

MADRS = Instrument(
    key="madrs",
    title="Montgomery-Asberg Depression Rating Scale (MADRS)",
    version="1.0.0",
    panel_loinc=None,  # unverified: no LOINC MADRS panel found (searched LOINC/loinc.org copies)
    total_loinc=None,  # unverified: no LOINC MADRS total found
    items=tuple(
        Item(link_id=f"madrs-{number}", text=f"Item {number}: {heading}", options=_OPTIONS)
        for number, heading in enumerate(_HEADINGS, start=1)
    ),
    min_total=0,
    max_total=60,
    # Bands per CLINICAL.md section 2 (Snaith et al. 1986 / Herrmann 1998 conventions).
    bands=(Band(0, 6, "normal"), Band(7, 19, "mild"), Band(20, 34, "moderate"), Band(35, 60, "severe")),
    # Default <= 10; esketamine trials (e.g. TRANSFORM-2) use <= 12: a per-tenant setting, not a constant.
    remission=Threshold("<=", 10),
    response_reduction=0.5,
)
