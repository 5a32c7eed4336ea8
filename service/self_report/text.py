"""What the patient's pages say, per language: the page's own words and each instrument's published instructions.

English ships. A translation is one more `Translation` in TRANSLATIONS: the page words, each instrument's
instructions, and, where it has a validated translation of an instrument, that item text and answer wording by
link id and answer code (an item or answer it leaves out is shown in the definition's English). A patient whose
language has no translation gets English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Translation:
    language: str
    page: Mapping[str, str]
    # Instrument key -> the instructions printed above its questions (the published stem), by link id where
    # they differ per item (the C-SSRS screener's "past month" and "ever").
    instructions: Mapping[str, Mapping[str, str]]
    item_text: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    answer_text: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def instruction(self, instrument: str, link_id: str) -> str | None:
        by_item = self.instructions.get(instrument, {})
        return by_item.get(link_id, by_item.get("*"))


_TWO_WEEKS_PHQ = "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
_TWO_WEEKS_GAD = "Over the last 2 weeks, how often have you been bothered by the following problems?"

ENGLISH = Translation(
    language="en",
    page=MappingProxyType(
        {
            "title": "Questionnaire from your care team",
            "intro": "Your care team asked you to answer a short questionnaire. Your answers go only to them.",
            "question_of": "Question {number} of {count}",
            "next": "Save and continue",
            "back": "Back",
            "review_title": "Check your answers",
            "review_intro": "Check your answers, then send them to your care team. You can change any answer.",
            "change": "Change",
            "not_answered": "Not answered",
            "submit": "Send my answers",
            "saved_note": "Your answers are saved as you go. You can close this page and come back to the same link "
            "until {expires}.",
            "choose_one": "Choose one answer to continue.",
            "missing": "Some questions are not answered yet. Answer them, then send your answers.",
            "not_an_answer": "That answer is not one of the choices. Choose one of the answers shown.",
            "done_title": "Thank you",
            "done": "Your answers were sent to your care team. You can close this page.",
            "crisis_heading": "Help is available now",
            "staff_will_call": "Because of your answer, someone from your care team will contact you.",
            "crisis_continue": "You can keep answering the questionnaire below.",
            "unusable_title": "This link cannot be used",
            "unknown": "This link is not valid. Check that you copied the whole link from your message.",
            "expired": "This link has expired. If you still want to answer, ask your care team for a new link.",
            "used": "This questionnaire has already been answered with this link. Thank you.",
            "cancelled": "This questionnaire is no longer needed. There is nothing more to do.",
            "refused_title": "That could not be saved",
            "too_large": "What was sent was too large. Go back and try again.",
            "error": "Something went wrong and nothing was saved. Go back and try again.",
            "optional": "(optional)",
        }
    ),
    instructions=MappingProxyType(
        {
            "phq-9": {"*": _TWO_WEEKS_PHQ, "/69722-7": ""},
            "phq-2": {"*": _TWO_WEEKS_PHQ},
            "gad-7": {"*": _TWO_WEEKS_GAD},
            # The screener's recent version asks the first five questions about the past month, the sixth
            # about the patient's lifetime (its own words say "ever"), the seventh about the past 3 months.
            "c-ssrs-screener": {"*": "In the past month:", "/93267-3": "", "/93269-9": ""},
        }
    ),
)

TRANSLATIONS: Mapping[str, Translation] = MappingProxyType({"en": ENGLISH})


def translation(language: str) -> Translation:
    """The patient's language where a translation ships ("pt-BR" falls back to "pt", then to English)."""
    return TRANSLATIONS.get(language) or TRANSLATIONS.get(language.split("-")[0].lower()) or ENGLISH
