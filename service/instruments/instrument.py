"""What an instrument is, as data: items, answer options, scoring rules and clinical thresholds."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .codes import CODESYSTEM_BASE, QUESTIONNAIRE_BASE

Comparator = Literal["<", "<=", ">", ">="]

_COMPARE: dict[Comparator, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Threshold:
    comparator: Comparator
    value: float

    def met_by(self, score: float) -> bool:
        return _COMPARE[self.comparator](score, self.value)

    def __str__(self) -> str:
        return f"{self.comparator} {self.value:g}"


@dataclass(frozen=True, slots=True)
class AnswerOption:
    code: str
    display: str
    # None for answers that carry meaning but no score (PHQ-9 difficulty, C-SSRS risk level).
    score: int | None
    system: str | None


@dataclass(frozen=True, slots=True)
class SafetyRule:
    """An item answer at or above min_score needs a clinician's attention."""

    min_score: int
    reason: str


@dataclass(frozen=True, slots=True)
class Item:
    link_id: str
    text: str
    loinc: str | None = None
    options: tuple[AnswerOption, ...] = ()
    scored: bool = True
    # False for items the instrument asks only conditionally (C-SSRS skip logic) or never requires.
    required: bool = True
    safety: SafetyRule | None = None
    # Inclusive range of a bare integer answer for items without options (externally scored totals).
    integer_range: tuple[int, int] | None = None
    # Yes/No items also take valueBoolean (true = the option scored 1).
    yes_no: bool = False
    # Unscored items whose code list we do not own (a sender's own risk level): any coding is kept.
    any_code: bool = False

    @property
    def scores(self) -> frozenset[int]:
        if self.integer_range is not None:
            low, high = self.integer_range
            return frozenset(range(low, high + 1))
        return frozenset(o.score for o in self.options if o.score is not None)


@dataclass(frozen=True, slots=True)
class Band:
    low: int
    high: int
    label: str


@dataclass(frozen=True, slots=True)
class Domain:
    """A symptom domain scored as the highest of its items (QIDS-SR16).

    Each group must have at least one answer: QIDS-SR16 asks for either item 6 or 7, either 8 or 9.
    """

    name: str
    groups: tuple[tuple[str, ...], ...]

    @property
    def link_ids(self) -> tuple[str, ...]:
        return tuple(link_id for group in self.groups for link_id in group)


@dataclass(frozen=True, slots=True)
class Proration:
    """Total = mean of answered scored items x item count, when at most max_missing are missing."""

    max_missing: int


@dataclass(frozen=True, slots=True)
class TotalAlert:
    """A finding on the total score (CADSS dissociation, MOAA/S sedation); threshold overridable per call."""

    threshold: Threshold
    reason: str


@dataclass(frozen=True, slots=True)
class Instrument:
    key: str
    title: str
    version: str
    panel_loinc: str | None
    total_loinc: str | None
    items: tuple[Item, ...]
    min_total: int
    max_total: int
    bands: tuple[Band, ...] = ()
    domains: tuple[Domain, ...] = ()
    remission: Threshold | None = None
    # Fractional reduction from baseline that counts as response (0.5 = at least 50 %).
    response_reduction: float | None = None
    # Rise over the previous score that counts as worsening.
    worsening_rise: int | None = None
    proration: Proration | None = None
    total_alert: TotalAlert | None = None
    # False when the instrument has no total (C-SSRS screener is read item by item).
    has_total: bool = True
    # Licensed instruments (BDI-II, HAM-D17): one item holds the total scored elsewhere; no item text.
    externally_scored: bool = False
    _by_link_id: dict[str, Item] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_link_id = {item.link_id: item for item in self.items}
        if len(by_link_id) != len(self.items):
            raise ValueError(f"{self.key}: duplicate item link ids")
        object.__setattr__(self, "_by_link_id", by_link_id)
        self._check_bands()
        for domain in self.domains:
            unknown = [link_id for link_id in domain.link_ids if link_id not in by_link_id]
            if unknown:
                raise ValueError(f"{self.key}: domain {domain.name} names unknown items {unknown}")
        if self.proration is not None and self.domains:
            raise ValueError(f"{self.key}: proration is defined only for plain item sums")

    def _check_bands(self) -> None:
        expected = self.min_total
        for band in sorted(self.bands, key=lambda b: b.low):
            if band.low != expected or band.high < band.low:
                raise ValueError(f"{self.key}: severity bands must tile {self.min_total}-{self.max_total}")
            expected = band.high + 1
        if self.bands and expected != self.max_total + 1:
            raise ValueError(f"{self.key}: severity bands must tile {self.min_total}-{self.max_total}")

    @property
    def canonical(self) -> str:
        return f"{QUESTIONNAIRE_BASE}/{self.key}"

    @property
    def code_system(self) -> str:
        """Our own code system for answer codes of instruments without a LOINC answer list."""
        return f"{CODESYSTEM_BASE}/{self.key}"

    @property
    def total_link_id(self) -> str:
        """Link id of the total in our Questionnaire; the LOINC "/code" convention where a code exists."""
        return f"/{self.total_loinc}" if self.total_loinc else f"{self.key}-total"

    def item(self, link_id: str) -> Item | None:
        return self._by_link_id.get(link_id)

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.scored)

    def item_for_loinc(self, loinc: str) -> Item | None:
        return next((item for item in self.items if item.loinc == loinc), None)

    def band_for(self, total: float) -> str | None:
        return next((b.label for b in self.bands if b.low <= total <= b.high), None)


def numbered_options(system: str, labels: tuple[str, ...]) -> tuple[AnswerOption, ...]:
    """Options scored 0..n-1 whose codes are their scores, in our own code system."""
    return tuple(
        AnswerOption(code=str(score), display=label, score=score, system=system) for score, label in enumerate(labels)
    )
