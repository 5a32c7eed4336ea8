"""Scoring a set of answers against an instrument: by each answer's ordinal value, never by position."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from .answers import ItemAnswer
from .instrument import Instrument, Item, Threshold


class ScoringError(ValueError):
    """An answer that cannot belong to the instrument; names the item and the offending value."""

    def __init__(self, link_id: str, message: str) -> None:
        super().__init__(message)
        self.link_id = link_id


class SafetyFinding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    link_id: str | None  # None when the finding is on the total score
    code: str | None
    reason: str
    value: float


class Score(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instrument_key: str
    total: int | float | None
    severity: str | None
    complete: bool
    missing_items: tuple[str, ...]
    item_scores: Mapping[str, int]
    safety_findings: tuple[SafetyFinding, ...]
    sent_total: float | None
    total_mismatch: bool
    prorated: bool
    remission: bool | None
    # False for a total sent without its items (an EHR flowsheet row, a total Observation): the total counts, but
    # what the items would have said (PHQ-9 item 9) is unknown, never 0 (CLINICAL.md section 2).
    items_reported: bool = True


def resolve_ordinal(item: Item, answer: ItemAnswer) -> int | None:
    """The answer's ordinal score on this item; None for unscored items. Raises ScoringError."""

    def reject(what: str) -> ScoringError:
        return ScoringError(item.link_id, f"item {item.link_id!r} ({item.text}): {what}")

    if answer.value_coding is not None:
        coding = answer.value_coding
        for option in item.options:
            # A missing system on either side matches: real senders omit it (uwcirg GAD-7).
            if option.code == coding.code and (
                None in (option.system, coding.system) or option.system == coding.system
            ):
                return option.score
        if item.any_code:
            return None
        raise reject(f"{answer.describe_value()} is not among the item's answer options")
    if answer.value_boolean is not None:
        if not item.yes_no:
            raise reject(f"{answer.describe_value()} given, but the item is not a yes/no question")
        return 1 if answer.value_boolean else 0
    number: float | None = answer.value_integer if answer.value_integer is not None else answer.value_decimal
    if number is None:
        raise reject(f"{answer.describe_value()} cannot be scored")
    if isinstance(number, float) and not number.is_integer():
        raise reject(f"{answer.describe_value()} is not a whole number")
    if int(number) not in item.scores:
        raise reject(f"{answer.describe_value()} is outside the item's scores {_describe_scores(item)}")
    return int(number)


def _describe_scores(item: Item) -> str:
    scores = sorted(item.scores)
    return f"{scores[0]}-{scores[-1]}" if scores else "(none: the item is not scored)"


def score_answers(
    instrument: Instrument,
    answers: Sequence[ItemAnswer],
    *,
    sent_total: float | None = None,
    total_alert_threshold: float | None = None,
) -> Score:
    """Score answers; an incomplete set gets no total unless the instrument's own rules allow proration.

    total_alert_threshold overrides the instrument's default alert threshold (CADSS, MOAA/S) per tenant.
    """
    scores: dict[str, int] = {}
    findings: list[SafetyFinding] = []
    seen: set[str] = set()
    for answer in answers:
        item = instrument.item(answer.link_id)
        if item is None:
            raise ScoringError(
                answer.link_id,
                f"{instrument.title} has no item {answer.link_id!r} (answered {answer.describe_value()})",
            )
        if answer.link_id in seen:
            raise ScoringError(answer.link_id, f"item {answer.link_id!r} ({item.text}) is answered twice")
        seen.add(answer.link_id)
        ordinal = resolve_ordinal(item, answer)
        if ordinal is None or not item.scored:
            continue
        scores[item.link_id] = ordinal
        if item.safety is not None and ordinal >= item.safety.min_score:
            code = answer.value_coding.code if answer.value_coding else None
            findings.append(SafetyFinding(link_id=item.link_id, code=code, reason=item.safety.reason, value=ordinal))

    if not seen and sent_total is not None and instrument.has_total and not instrument.externally_scored:
        return _total_only(instrument, sent_total, total_alert_threshold)
    missing = _missing_items(instrument, scores)
    total, prorated = _total(instrument, scores, missing)
    if total is not None:
        findings.extend(_total_alert(instrument, total, total_alert_threshold))
    return Score(
        instrument_key=instrument.key,
        total=total,
        severity=instrument.band_for(total) if total is not None else None,
        complete=not missing,
        missing_items=missing,
        item_scores=scores,
        safety_findings=tuple(findings),
        sent_total=sent_total,
        total_mismatch=sent_total is not None and total is not None and sent_total != total,
        prorated=prorated,
        remission=instrument.remission.met_by(total) if instrument.remission and total is not None else None,
    )


def _total_only(instrument: Instrument, sent_total: float, threshold: float | None) -> Score:
    """The sender's total, with no item answered: it counts as the score, marked "items not reported"."""
    where = instrument.total_link_id
    if not float(sent_total).is_integer() and instrument.proration is None:
        raise ScoringError(where, f"{instrument.title} total {sent_total:g} is not a whole number")
    if not instrument.min_total <= sent_total <= instrument.max_total:
        raise ScoringError(
            where,
            f"{instrument.title} total {sent_total:g} is outside its range "
            f"{instrument.min_total}-{instrument.max_total}",
        )
    total: int | float = int(sent_total) if float(sent_total).is_integer() else sent_total
    return Score(
        instrument_key=instrument.key,
        total=total,
        severity=instrument.band_for(total),
        complete=True,
        missing_items=(),
        item_scores={},
        safety_findings=tuple(_total_alert(instrument, total, threshold)),
        sent_total=sent_total,
        total_mismatch=False,
        prorated=False,
        remission=instrument.remission.met_by(total) if instrument.remission else None,
        items_reported=False,
    )


def _missing_items(instrument: Instrument, scores: Mapping[str, int]) -> tuple[str, ...]:
    if instrument.domains:
        return tuple(
            "|".join(group)
            for domain in instrument.domains
            for group in domain.groups
            if not any(link_id in scores for link_id in group)
        )
    return tuple(i.link_id for i in instrument.scored_items if i.required and i.link_id not in scores)


def _total(
    instrument: Instrument, scores: Mapping[str, int], missing: tuple[str, ...]
) -> tuple[int | float | None, bool]:
    if not instrument.has_total:
        return None, False
    if instrument.domains:
        if missing:
            return None, False
        # Unanswered alternatives (QIDS item 7 when 6 was answered) do not lower a domain's maximum.
        domain_scores = [max(scores.get(link_id, 0) for link_id in d.link_ids) for d in instrument.domains]
        return sum(domain_scores), False
    if not missing:
        return sum(scores.values()), False
    rule = instrument.proration
    if rule is None or len(missing) > rule.max_missing or not scores:
        return None, False
    item_count = len([i for i in instrument.scored_items if i.required])
    # Kept as a float with one decimal: a prorated total is an estimate, not an observed sum.
    return round(sum(scores.values()) * item_count / len(scores), 1), True


def _total_alert(instrument: Instrument, total: float, threshold: float | None) -> list[SafetyFinding]:
    alert = instrument.total_alert
    if alert is None:
        return []
    rule = alert.threshold if threshold is None else Threshold(alert.threshold.comparator, threshold)
    if not rule.met_by(total):
        return []
    return [SafetyFinding(link_id=None, code=None, reason=f"{alert.reason} ({rule})", value=total)]
