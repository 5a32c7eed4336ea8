"""Small-cell suppression: nothing under the cell size is shown, and no hidden cell can be backed out."""

from __future__ import annotations

from service.outcomes.suppression import cell, partition, rate


def test_a_cell_of_three_is_suppressed_and_zero_is_shown() -> None:
    assert cell(3, 11).model_dump() == {"value": None, "suppressed": True, "reason": "small"}
    assert cell(0, 11).model_dump() == {"value": 0, "suppressed": False, "reason": None}
    assert cell(11, 11).model_dump() == {"value": 11, "suppressed": False, "reason": None}
    assert cell(10, 11).suppressed


def test_one_small_part_hides_the_next_smallest_so_the_total_cannot_give_it_away() -> None:
    total, parts = partition(40, {"responded": 3, "not": 25, "missing": 12}, 11)
    assert total.value == 40
    assert parts["responded"].reason == "small" and parts["missing"].reason == "complementary"
    assert parts["not"].value == 25


def test_two_small_parts_are_hidden_and_the_rest_shown() -> None:
    _, parts = partition(30, {"a": 4, "b": 5, "c": 21}, 11)
    assert parts["a"].suppressed and parts["b"].suppressed and parts["c"].value == 21


def test_a_small_total_hides_every_part() -> None:
    total, parts = partition(8, {"a": 0, "b": 8}, 11)
    assert total.suppressed and all(p.suppressed for p in parts.values())


def test_rate_on_a_small_numerator_or_denominator_is_hidden() -> None:
    _, parts = partition(30, {"yes": 3, "no": 27}, 11)
    assert parts["no"].suppressed  # else 30 - 27 = 3
    hidden = rate(parts["yes"], cell(30, 11), 3, 30, 11)
    assert hidden.rate is None and hidden.suppressed
    shown = rate(cell(15, 11), cell(30, 11), 15, 30, 11)
    assert shown.rate == 0.5 and not shown.suppressed
    assert rate(cell(0, 11), cell(5, 11), 0, 5, 11).rate is None
