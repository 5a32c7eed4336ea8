"""score_answers: properties over PHQ-9, instrument-specific rules, and rejected answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.instruments import (
    INSTRUMENTS,
    Coding,
    Instrument,
    Item,
    ItemAnswer,
    Proration,
    ScoringError,
    score_answers,
)

from .builders import LL358_3, PHQ9_CODES, integer_answers

PHQ9 = INSTRUMENTS["phq-9"]
PHQ9_LINK_IDS = [f"/{code}" for code in PHQ9_CODES]
LOINC = "http://loinc.org"

item_scores = st.lists(st.integers(0, 3), min_size=9, max_size=9)


def phq9_answer(link_id: str, score: int, coded: bool) -> ItemAnswer:
    if coded:
        return ItemAnswer(link_id=link_id, value_coding=Coding(system=LOINC, code=LL358_3[score]))
    return ItemAnswer(link_id=link_id, value_integer=score)


@given(scores=item_scores, coded=st.lists(st.booleans(), min_size=9, max_size=9))
def test_complete_phq9_is_the_sum_of_its_ordinals(scores: list[int], coded: list[bool]) -> None:
    answers = [phq9_answer(*args) for args in zip(PHQ9_LINK_IDS, scores, coded, strict=True)]
    score = score_answers(PHQ9, answers)
    assert score.complete and score.missing_items == ()
    assert score.total == sum(scores) and 0 <= score.total <= 27
    assert score.remission == (sum(scores) < 5)


@given(scores=item_scores)
def test_item9_endorsed_always_yields_a_safety_finding(scores: list[int]) -> None:
    score = score_answers(PHQ9, integer_answers(PHQ9_LINK_IDS, scores))
    flagged = [f for f in score.safety_findings if f.link_id == "/44260-8"]
    assert bool(flagged) == (scores[8] >= 1)
    if flagged:
        assert flagged[0].value == scores[8]


@given(data=st.data(), scores=item_scores)
def test_item_order_never_changes_the_score(data: st.DataObject, scores: list[int]) -> None:
    answers = integer_answers(PHQ9_LINK_IDS, scores)
    shuffled = data.draw(st.permutations(answers))
    assert score_answers(PHQ9, shuffled) == score_answers(PHQ9, answers)


# At least one item answered: with none, a sent total is the score ("items not reported", test_total_only_*).
@given(scores=item_scores, missing=st.sets(st.integers(0, 8), min_size=1, max_size=8))
def test_incomplete_phq9_has_no_total(scores: list[int], missing: set[int]) -> None:
    kept = [i for i in range(9) if i not in missing]
    answers = integer_answers([PHQ9_LINK_IDS[i] for i in kept], [scores[i] for i in kept])
    score = score_answers(PHQ9, answers, sent_total=float(sum(scores)))
    assert score.total is None and not score.complete
    assert score.severity is None and score.remission is None and not score.prorated
    assert set(score.missing_items) == {PHQ9_LINK_IDS[i] for i in missing}
    # Nothing to compare a sent total with: kept, but not called a mismatch.
    assert score.sent_total == sum(scores) and not score.total_mismatch


def test_total_mismatch_keeps_both_values() -> None:
    score = score_answers(PHQ9, integer_answers(PHQ9_LINK_IDS, [1] * 9), sent_total=10)
    assert (score.total, score.sent_total, score.total_mismatch) == (9, 10, True)
    assert not score_answers(PHQ9, integer_answers(PHQ9_LINK_IDS, [1] * 9), sent_total=9.0).total_mismatch


def test_unscored_difficulty_item_is_accepted_but_not_counted() -> None:
    difficulty = ItemAnswer(link_id="/69722-7", value_coding=Coding(system=LOINC, code="LA6575-0"))
    score = score_answers(PHQ9, [*integer_answers(PHQ9_LINK_IDS, [3] * 9), difficulty])
    assert score.total == 27 and "/69722-7" not in score.item_scores


def test_gad7_scores_by_ordinal_not_by_code_identity() -> None:
    gad7 = INSTRUMENTS["gad-7"]
    worry = ItemAnswer(link_id="/68509-9", value_coding=Coding(code="LA18938-3"))  # no system, as uwcirg
    others = integer_answers([i.link_id for i in gad7.items if i.link_id != "/68509-9"], [0] * 6)
    score = score_answers(gad7, [worry, *others])
    assert score.item_scores["/68509-9"] == 2 and score.total == 2
    # LA6570-1 means 2 on the other GAD-7 items, but is not an answer option of 68509-9.
    with pytest.raises(ScoringError, match="LA6570-1"):
        score_answers(gad7, [ItemAnswer(link_id="/68509-9", value_coding=Coding(system=LOINC, code="LA6570-1"))])


BAD_ANSWERS = [
    (
        ItemAnswer(link_id="/44250-9", value_coding=Coding(system=LOINC, code="LA9999-9")),
        "/44250-9",
        "LA9999-9",
    ),
    (
        ItemAnswer(link_id="/44250-9", value_coding=Coding(system="http://other", code="LA6568-5")),
        "/44250-9",
        "http://other",
    ),
    (ItemAnswer(link_id="/44250-9", value_integer=4), "/44250-9", "integer 4"),
    (ItemAnswer(link_id="/44250-9", value_integer=-1), "/44250-9", "integer -1"),
    (ItemAnswer(link_id="/44250-9", value_decimal=1.5), "/44250-9", "decimal 1.5"),
    (ItemAnswer(link_id="/44250-9", value_boolean=True), "/44250-9", "boolean True"),
    (ItemAnswer(link_id="/44250-9", value_string="2"), "/44250-9", "string '2'"),
    (ItemAnswer(link_id="/99999-9", value_integer=1), "/99999-9", "integer 1"),
]


@pytest.mark.parametrize(("answer", "link_id", "value"), BAD_ANSWERS)
def test_bad_answers_raise_naming_item_and_value(answer: ItemAnswer, link_id: str, value: str) -> None:
    with pytest.raises(ScoringError) as raised:
        score_answers(PHQ9, [answer])
    assert raised.value.link_id == link_id
    assert link_id in str(raised.value) and value in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_duplicated_link_id_raises() -> None:
    answers = integer_answers(["/44250-9", "/44250-9"], [1, 2])
    with pytest.raises(ScoringError, match="answered twice") as raised:
        score_answers(PHQ9, answers)
    assert raised.value.link_id == "/44250-9"


def test_integral_decimal_is_accepted() -> None:
    score = score_answers(PHQ9, [ItemAnswer(link_id="/44250-9", value_decimal=2.0)])
    assert score.item_scores == {"/44250-9": 2}


class TestCssrs:
    instrument = INSTRUMENTS["c-ssrs-screener"]

    def answers(self, yes: set[str], *, boolean: bool = False) -> list[ItemAnswer]:
        asked = ["93246-7", "93247-5", "93248-3", "93249-1", "93250-9", "93267-3", "93269-9"]
        if boolean:
            return [ItemAnswer(link_id=f"/{code}", value_boolean=code in yes) for code in asked]
        return [
            ItemAnswer(
                link_id=f"/{code}",
                value_coding=Coding(system=LOINC, code="LA33-6" if code in yes else "LA32-8"),
            )
            for code in asked
        ]

    @pytest.mark.parametrize(
        ("yes", "high_risk"),
        [
            (set(), []),
            ({"93246-7", "93247-5", "93248-3"}, []),  # ideation with method, no intent: not high risk
            ({"93249-1"}, ["/93249-1"]),  # Q4 intent
            ({"93250-9"}, ["/93250-9"]),  # Q5 plan
            ({"93267-3"}, []),  # behaviour ever, but not in the past 3 months
            ({"93267-3", "93269-9"}, ["/93269-9"]),  # behaviour in the past 3 months
        ],
    )
    @pytest.mark.parametrize("boolean", [False, True])
    def test_high_risk(self, yes: set[str], high_risk: list[str], boolean: bool) -> None:
        score = score_answers(self.instrument, self.answers(yes, boolean=boolean))
        assert [f.link_id for f in score.safety_findings] == high_risk
        assert all(f.reason.startswith("C-SSRS high risk") for f in score.safety_findings)
        assert score.total is None and score.complete

    def test_skip_logic_items_are_not_required(self) -> None:
        answers = [ItemAnswer(link_id=f"/{c}", value_boolean=False) for c in ("93246-7", "93247-5", "93267-3")]
        assert score_answers(self.instrument, answers).complete
        assert score_answers(self.instrument, answers[:2]).missing_items == ("/93267-3",)

    def test_sender_risk_level_is_kept_whatever_its_code(self) -> None:
        risk = ItemAnswer(link_id="/93374-7", value_coding=Coding(system=LOINC, code="LA-anything"))
        assert score_answers(self.instrument, [*self.answers(set()), risk]).complete


class TestQids:
    instrument = INSTRUMENTS["qids-sr16"]

    def test_domains_take_the_highest_item(self) -> None:
        scores = {1: 1, 2: 3, 3: 0, 4: 2, 5: 2, 6: 1, 8: 3, 10: 1, 11: 1, 12: 0, 13: 2, 14: 1, 15: 0, 16: 2}
        answers = integer_answers([f"qids-{n}" for n in scores], list(scores.values()))
        score = score_answers(self.instrument, answers)
        # sleep 3, mood 2, appetite/weight 3, concentration 1, self 1, suicide 0, interest 2, energy 1,
        # psychomotor 2
        assert (score.total, score.severity, score.complete) == (15, "moderate", True)

    def test_either_or_items(self) -> None:
        base = {n: 0 for n in range(1, 17) if n not in (6, 7, 8, 9)}
        answers = integer_answers([f"qids-{n}" for n in base], list(base.values()))
        only_appetite = answers + integer_answers(["qids-7"], [2])
        score = score_answers(self.instrument, only_appetite)
        assert score.total is None and score.missing_items == ("qids-8|qids-9",)
        both = only_appetite + integer_answers(["qids-9"], [1])
        assert score_answers(self.instrument, both).total == 2


@pytest.mark.parametrize(
    ("total", "threshold", "flagged"), [(4, None, False), (5, None, True), (5, 10, False), (11, 10, True)]
)
def test_cadss_flags_above_a_configurable_threshold(total: int, threshold: float | None, flagged: bool) -> None:
    cadss = INSTRUMENTS["cadss"]
    scores = [min(4, max(0, total - 4 * i)) for i in range(23)]
    score = score_answers(
        cadss, integer_answers([i.link_id for i in cadss.items], scores), total_alert_threshold=threshold
    )
    assert score.total == total
    assert [f.value for f in score.safety_findings] == ([total] if flagged else [])


@pytest.mark.parametrize(("rating", "flagged"), [(0, True), (2, True), (3, False), (5, False)])
def test_moaas_flags_deep_sedation(rating: int, flagged: bool) -> None:
    moaas = INSTRUMENTS["moaa-s"]
    score = score_answers(moaas, integer_answers(["moaa-s"], [rating]))
    assert bool(score.safety_findings) == flagged
    assert score_answers(moaas, integer_answers(["moaa-s"], [3]), total_alert_threshold=3).safety_findings


@pytest.mark.parametrize(("key", "link_id", "limit"), [("bdi-ii", "/89209-1", 63), ("ham-d17", "ham-d17-total", 52)])
def test_external_totals_are_range_checked(key: str, link_id: str, limit: int) -> None:
    instrument = INSTRUMENTS[key]
    assert score_answers(instrument, integer_answers([link_id], [limit]), sent_total=limit).total == limit
    with pytest.raises(ScoringError, match=f"integer {limit + 1}"):
        score_answers(instrument, integer_answers([link_id], [limit + 1]))


def test_proration_only_where_the_instrument_allows_it() -> None:
    items = tuple(Item(link_id=f"q{n}", text=f"q{n}", integer_range=(0, 3)) for n in range(4))
    prorating = Instrument(
        key="x",
        title="x",
        version="1",
        panel_loinc=None,
        total_loinc=None,
        items=items,
        min_total=0,
        max_total=12,
        proration=Proration(max_missing=1),
    )
    score = score_answers(prorating, integer_answers(["q0", "q1", "q2"], [1, 2, 2]))
    assert (score.total, score.prorated, score.complete) == (6.7, True, False)
    assert score_answers(prorating, integer_answers(["q0", "q1"], [1, 2])).total is None


# ---- a total sent without its items ----------------------------------------------------------------------


@given(total=st.integers(0, 27))
def test_total_only_phq9_scores_as_sent_with_items_not_reported(total: int) -> None:
    score = score_answers(PHQ9, [], sent_total=float(total))
    assert (score.total, score.complete, score.items_reported, score.item_scores) == (total, True, False, {})
    assert score.severity == PHQ9.band_for(total) and score.remission == (total < 5)  # CLINICAL.md section 4
    assert score.safety_findings == () and not score.total_mismatch


@pytest.mark.parametrize(("total", "says"), [(28, "outside its range 0-27"), (-1, "outside"), (12.5, "whole number")])
def test_total_only_outside_the_instrument_is_refused(total: float, says: str) -> None:
    with pytest.raises(ScoringError) as refused:
        score_answers(PHQ9, [], sent_total=total)
    assert says in str(refused.value) and refused.value.link_id == "/44261-6"


def test_no_items_and_no_total_is_still_an_incomplete_response() -> None:
    score = score_answers(PHQ9, [])
    assert (score.total, score.complete, score.items_reported) == (None, False, True)
