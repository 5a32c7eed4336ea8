"""QIDS-SR16 (Rush et al. 2003, Biol Psychiatry 54:573); the IDS/QIDS are free for clinical use.

Only short item headings are shipped. Total = sum of 9 DSM symptom domains, each the highest of its items.
"""

from __future__ import annotations

from service.instruments.codes import CODESYSTEM_BASE
from service.instruments.instrument import Band, Domain, Instrument, Item, Threshold, numbered_options

_OPTIONS = numbered_options(f"{CODESYSTEM_BASE}/qids-sr16", ("0", "1", "2", "3"))
_HEADINGS = (
    "Falling asleep",
    "Sleep during the night",
    "Waking up too early",
    "Sleeping too much",
    "Feeling sad",
    "Decreased appetite",
    "Increased appetite",
    "Decreased weight",
    "Increased weight",
    "Concentration and decision making",
    "View of myself",
    "Thoughts of death or suicide",
    "General interest",
    "Energy level",
    "Feeling slowed down",
    "Feeling restless",
)


def _id(number: int) -> str:
    return f"qids-{number}"


def _single(name: str, number: int) -> Domain:
    return Domain(name, ((_id(number),),))


QIDS_SR16 = Instrument(
    key="qids-sr16",
    title="Quick Inventory of Depressive Symptomatology, self-report, 16 items (QIDS-SR16)",
    version="1.0.0",
    panel_loinc=None,  # unverified: no LOINC QIDS-SR16 panel found
    total_loinc=None,  # unverified: no LOINC QIDS-SR16 total found
    items=tuple(
        Item(link_id=_id(number), text=f"Item {number}: {heading}", options=_OPTIONS)
        for number, heading in enumerate(_HEADINGS, start=1)
    ),
    min_total=0,
    max_total=27,
    domains=(
        Domain("sleep", ((_id(1),), (_id(2),), (_id(3),), (_id(4),))),
        _single("sad mood", 5),
        # The form asks for either item 6 or 7, and either 8 or 9 (Rush 2003 scoring instructions).
        Domain("appetite/weight", ((_id(6), _id(7)), (_id(8), _id(9)))),
        _single("concentration", 10),
        _single("self-view", 11),
        _single("suicidal ideation", 12),
        _single("interest", 13),
        _single("energy", 14),
        Domain("psychomotor", ((_id(15),), (_id(16),))),
    ),
    # Rush 2003 severity bands (CLINICAL.md section 2).
    bands=(
        Band(0, 5, "none"),
        Band(6, 10, "mild"),
        Band(11, 15, "moderate"),
        Band(16, 20, "severe"),
        Band(21, 27, "very severe"),
    ),
    remission=Threshold("<=", 5),
    response_reduction=0.5,
)
