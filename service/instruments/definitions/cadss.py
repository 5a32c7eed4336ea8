"""CADSS, 23 rated items (Bremner et al. 1998, J Trauma Stress 11:125), rated per ketamine session.

No item text is shipped (not confirmed free to reproduce): items are numbered only.
"""

from __future__ import annotations

from service.instruments.codes import CODESYSTEM_BASE
from service.instruments.instrument import Instrument, Item, Threshold, TotalAlert, numbered_options

_OPTIONS = numbered_options(f"{CODESYSTEM_BASE}/cadss", ("0", "1", "2", "3", "4"))

CADSS = Instrument(
    key="cadss",
    title="Clinician-Administered Dissociative States Scale (CADSS)",
    version="1.0.0",
    panel_loinc=None,  # unverified: no LOINC CADSS panel found
    total_loinc=None,  # unverified: no LOINC CADSS total found
    items=tuple(Item(link_id=f"cadss-{number}", text=f"Item {number}", options=_OPTIONS) for number in range(1, 24)),
    min_total=0,
    max_total=92,
    # No validated cut-off exists (CLINICAL.md). Default > 4: the convention for "dissociation present"
    # in esketamine trial reports. unverified: convention not traced to one primary publication.
    total_alert=TotalAlert(Threshold(">", 4), "CADSS dissociation above threshold"),
)
