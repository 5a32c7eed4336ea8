"""All instruments we know, and the lookups intake needs to recognise one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from .definitions.bdi2 import BDI_II
from .definitions.cadss import CADSS
from .definitions.cssrs import CSSRS_SCREENER
from .definitions.gad7 import GAD7
from .definitions.hamd17 import HAMD17
from .definitions.madrs import MADRS
from .definitions.moaas import MOAA_S
from .definitions.phq2 import PHQ2
from .definitions.phq9 import PHQ9
from .definitions.qids_sr16 import QIDS_SR16
from .instrument import Instrument

INSTRUMENTS: Mapping[str, Instrument] = MappingProxyType(
    {
        instrument.key: instrument
        for instrument in (PHQ9, PHQ2, GAD7, CSSRS_SCREENER, MADRS, QIDS_SR16, CADSS, MOAA_S, BDI_II, HAMD17)
    }
)


def instrument_for_canonical(url: str) -> Instrument | None:
    """Our instrument for one of our Questionnaire canonicals, with or without a |version suffix."""
    base, _, version = url.partition("|")
    for instrument in INSTRUMENTS.values():
        if instrument.canonical == base and version in ("", instrument.version):
            return instrument
    return None


def instrument_for_panel_code(loinc: str) -> Instrument | None:
    return next((i for i in INSTRUMENTS.values() if i.panel_loinc == loinc), None)


def instrument_for_item_codes(loinc_codes: Iterable[str]) -> Instrument | None:
    """The instrument whose LOINC items and total cover every given code.

    Several can (PHQ-2 items are PHQ-9 items): a total code decides, else the smallest instrument wins,
    so a response holding only the two PHQ-2 items is read as a complete PHQ-2, not an incomplete PHQ-9.
    """
    codes = set(loinc_codes)
    if not codes:
        return None
    candidates = [
        instrument
        for instrument in INSTRUMENTS.values()
        if codes <= {item.loinc for item in instrument.items if item.loinc} | {instrument.total_loinc}
    ]
    by_total = [i for i in candidates if i.total_loinc in codes]
    if by_total:
        candidates = by_total
    return min(candidates, key=lambda i: len(i.items), default=None)


# Total LOINC code -> instrument key, and panel LOINC code -> total code, from the definitions (each cites its
# source; CLINICAL.md §2): PHQ-9 44261-6 (panel 44249-1), PHQ-2 55758-7 (panel 55757-9), GAD-7 70274-6 (panel
# 69737-5), BDI-II 89209-1. What a total-score Observation is recognised by.
TOTAL_CODES: Mapping[str, str] = MappingProxyType(
    {i.total_loinc: i.key for i in INSTRUMENTS.values() if i.total_loinc and i.has_total}
)
PANEL_TOTALS: Mapping[str, str] = MappingProxyType(
    {i.panel_loinc: i.total_loinc for i in INSTRUMENTS.values() if i.panel_loinc and i.total_loinc and i.has_total}
)
