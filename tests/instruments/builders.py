"""Builders for test answers and QuestionnaireResponses; fixtures are loaded and varied, never copied."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.instruments import Instrument, ItemAnswer

PHQ9_CODES = (
    "44250-9",
    "44255-8",
    "44259-0",
    "44254-1",
    "44251-7",
    "44258-2",
    "44252-5",
    "44253-3",
    "44260-8",
)
LL358_3 = ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")  # score = index, per LOINC LL358-3


def integer_answers(link_ids: Sequence[str], scores: Sequence[int]) -> list[ItemAnswer]:
    return [ItemAnswer(link_id=link_id, value_integer=score) for link_id, score in zip(link_ids, scores, strict=True)]


def answers_for_total(instrument: Instrument, total: int) -> list[ItemAnswer]:
    """Answers reaching a total: fill domains (or items) greedily with their highest score."""
    if instrument.externally_scored:
        return [ItemAnswer(link_id=instrument.items[0].link_id, value_integer=total)]
    groups = (
        [d.groups for d in instrument.domains]
        if instrument.domains
        else [((i.link_id,),) for i in instrument.scored_items]
    )
    answers, remaining = [], total
    for domain_groups in groups:
        first = instrument.item(domain_groups[0][0])
        assert first is not None
        value = min(remaining, max(first.scores))
        remaining -= value
        # Every group of a domain gets the same value, so the domain maximum is that value.
        answers += [ItemAnswer(link_id=group[0], value_integer=value) for group in domain_groups]
    assert remaining == 0, f"{instrument.key} cannot reach {total}"
    return answers


def response(items: list[dict[str, Any]], questionnaire: str | None = None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": items}
    if questionnaire:
        resource["questionnaire"] = questionnaire
    return {**resource, **extra}


def coded_item(link_id: str, code: str, system: str | None = None) -> dict[str, Any]:
    coding = {"code": code} if system is None else {"system": system, "code": code}
    return {"linkId": link_id, "answer": [{"valueCoding": coding}]}
