"""Small-cell suppression: a count of 1 to (cell size - 1) patients is never shown, nor anything it can be
worked out from.

Rules (the CMS cell-size policy's spirit; cell size `TANDEM_OUTCOMES_MIN_CELL`, default 11):
- a count of patients between 1 and min_cell - 1 is suppressed; zero is shown (it identifies no one);
- a rate is suppressed when its numerator is suppressed or its denominator is under min_cell;
- complementary suppression: when the parts of a shown total (responders, non-responders, missing) would leave
  exactly one part suppressed, the next smallest part is suppressed too, so no suppressed part is the total minus
  the shown ones; a total under min_cell suppresses every part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field

Why = Literal["small", "complementary"]


class Cell(BaseModel):
    value: int | None = Field(description="Patients; null when suppressed")
    suppressed: bool = False
    reason: Why | None = Field(
        default=None,
        description="small: fewer patients than the cell size; complementary: hidden so that a small cell beside it "
        "cannot be worked out from the total",
    )

    @property
    def shown(self) -> str:
        return str(self.value) if self.value is not None else "suppressed"


class Rate(BaseModel):
    numerator: Cell
    denominator: Cell
    rate: float | None = Field(description="numerator / denominator, 0-1; null when suppressed or empty")
    suppressed: bool = False


def small(n: int, min_cell: int) -> bool:
    return 0 < n < min_cell


def cell(n: int, min_cell: int, *, hide: bool = False) -> Cell:
    if small(n, min_cell):
        return Cell(value=None, suppressed=True, reason="small")
    if hide:
        return Cell(value=None, suppressed=True, reason="complementary")
    return Cell(value=n)


def partition(total: int, parts: Mapping[str, int], min_cell: int) -> tuple[Cell, dict[str, Cell]]:
    """A total and the parts that add up to it, suppressed so that no hidden part can be backed out."""
    hidden = {k for k, n in parts.items() if small(n, min_cell)}
    total_hidden = small(total, min_cell)
    if total_hidden:
        hidden = set(parts)  # each part is then under the cell size too (or zero, hidden with it)
    elif len(hidden) == 1:
        # One hidden part is the total minus the others: hide the next smallest (non-zero first, then zero).
        rest = sorted((k for k in parts if k not in hidden), key=lambda k: (parts[k] == 0, parts[k], k))
        if rest:
            hidden.add(rest[0])
    return cell(total, min_cell, hide=total_hidden), {k: cell(n, min_cell, hide=k in hidden) for k, n in parts.items()}


def rate(numerator: Cell, denominator: Cell, raw_numerator: int, raw_denominator: int, min_cell: int) -> Rate:
    hidden = numerator.suppressed or denominator.suppressed or raw_denominator < min_cell
    value = None if hidden or raw_denominator == 0 else raw_numerator / raw_denominator
    return Rate(numerator=numerator, denominator=denominator, rate=value, suppressed=hidden)
