from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.instruments import Coding, ItemAnswer


def test_exactly_one_value_is_accepted() -> None:
    answer = ItemAnswer(link_id="/44250-9", value_coding=Coding(code="LA6568-5"))
    assert answer.value_coding is not None and answer.value_coding.system is None


@pytest.mark.parametrize("values", [{}, {"value_integer": 1, "value_boolean": True}])
def test_zero_or_two_values_are_rejected_with_a_clear_message(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="must set exactly one of value_coding"):
        ItemAnswer(link_id="/44250-9", **values)


def test_shape_is_closed_and_frozen() -> None:
    with pytest.raises(ValidationError):
        ItemAnswer(link_id="x", value_integer=1, extra_field=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        ItemAnswer(link_id="", value_integer=1)
    with pytest.raises(ValidationError):
        Coding(code="")
    answer = ItemAnswer(link_id="x", value_integer=1)
    with pytest.raises(ValidationError):
        answer.value_integer = 2  # type: ignore[misc]


def test_round_trips_through_json_for_storage() -> None:
    answer = ItemAnswer(link_id="/44250-9", value_coding=Coding(system="http://loinc.org", code="LA6569-3"))
    assert ItemAnswer.model_validate_json(answer.model_dump_json()) == answer
