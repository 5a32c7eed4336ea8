"""MOAA/S sedation rating (Chernik et al. 1990, J Clin Psychopharmacol 10:244), rated per session."""

from __future__ import annotations

from service.instruments.codes import CODESYSTEM_BASE
from service.instruments.instrument import Instrument, Item, Threshold, TotalAlert, numbered_options

_OPTIONS = numbered_options(
    f"{CODESYSTEM_BASE}/moaa-s",
    (
        "No response after painful trapezius squeeze",
        "Responds only after painful trapezius squeeze",
        "Responds only after mild prodding or shaking",
        "Responds only after name is called loudly and/or repeatedly",
        "Lethargic response to name spoken in normal tone",
        "Responds readily to name spoken in normal tone",
    ),
)

MOAA_S = Instrument(
    key="moaa-s",
    title="Modified Observer's Assessment of Alertness/Sedation (MOAA/S)",
    version="1.0.0",
    panel_loinc=None,  # none exists (CLINICAL.md section 2)
    total_loinc=None,
    items=(Item(link_id="moaa-s", text="Responsiveness", options=_OPTIONS),),
    min_total=0,
    max_total=5,
    # Default <= 2 (CLINICAL.md section 4 safety flags).
    total_alert=TotalAlert(Threshold("<=", 2), "MOAA/S deep sedation"),
)
