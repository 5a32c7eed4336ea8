"""Issue #22, part 2: the questions a patient is asked come from the instrument definitions, with the C-SSRS
screener's skip logic and the published instructions; the words are looked up per language (English ships)."""

from __future__ import annotations

from service.instruments.codes import NO, YES
from service.instruments.registry import INSTRUMENTS
from service.self_report.form import needs_help_now, questions
from service.self_report.text import ENGLISH, translation

CSSRS = INSTRUMENTS["c-ssrs-screener"]


def _asked(codes: dict[str, str]) -> list[str]:
    return [q.link_id for q in questions(CSSRS, codes)]


def test_the_cssrs_screener_asks_q3_to_q5_after_a_yes_to_q2_and_q7_after_a_yes_to_q6() -> None:
    assert _asked({}) == ["/93246-7", "/93247-5", "/93267-3"]
    assert _asked({"/93247-5": NO, "/93267-3": NO}) == ["/93246-7", "/93247-5", "/93267-3"]
    assert _asked({"/93247-5": YES}) == ["/93246-7", "/93247-5", "/93248-3", "/93249-1", "/93250-9", "/93267-3"]
    assert _asked({"/93267-3": YES})[-1] == "/93269-9"
    assert "/93374-7" not in _asked({"/93247-5": YES, "/93267-3": YES})  # the sender's risk level is never asked


def test_the_crisis_resources_follow_item_9_and_any_cssrs_yes() -> None:
    phq9 = INSTRUMENTS["phq-9"]
    assert not needs_help_now(phq9, {"/44260-8": "LA6568-5"})  # not at all
    assert needs_help_now(phq9, {"/44260-8": "LA6569-3"})  # several days
    assert not needs_help_now(CSSRS, {"/93246-7": NO, "/93247-5": NO})
    assert needs_help_now(CSSRS, {"/93246-7": YES})
    # A yes to a question no longer asked (Q2 changed to no) does not count.
    assert not needs_help_now(CSSRS, {"/93247-5": NO, "/93249-1": YES})


def test_every_instrument_sent_has_its_instructions_and_unknown_languages_get_english() -> None:
    stem = ENGLISH.instruction("phq-9", "/44250-9")
    assert stem is not None and stem.startswith("Over the last 2 weeks")
    assert ENGLISH.instruction("phq-9", "/69722-7") == ""
    assert ENGLISH.instruction("c-ssrs-screener", "/93246-7") == "In the past month:"
    assert translation("pt-BR") is ENGLISH and translation("en-GB") is ENGLISH
