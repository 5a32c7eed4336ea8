"""Instrument data: registry lookups, and per-instrument tables of severity-band edges and remission."""

from __future__ import annotations

import pytest

from service.instruments import (
    INSTRUMENTS,
    Band,
    Instrument,
    Item,
    instrument_for_canonical,
    instrument_for_item_codes,
    instrument_for_panel_code,
    score_answers,
)

from .builders import answers_for_total


def test_registry_holds_every_instrument() -> None:
    assert set(INSTRUMENTS) == {
        "phq-9",
        "phq-2",
        "gad-7",
        "c-ssrs-screener",
        "madrs",
        "qids-sr16",
        "cadss",
        "moaa-s",
        "bdi-ii",
        "ham-d17",
    }


def test_lookups() -> None:
    phq9 = INSTRUMENTS["phq-9"]
    assert instrument_for_canonical(phq9.canonical) is phq9
    assert instrument_for_canonical(f"{phq9.canonical}|{phq9.version}") is phq9
    assert instrument_for_canonical(f"{phq9.canonical}|0.0.0") is None
    assert instrument_for_canonical("http://example.org/Questionnaire/x") is None
    assert instrument_for_panel_code("44249-1") is phq9
    assert instrument_for_panel_code("69737-5") is INSTRUMENTS["gad-7"]
    assert instrument_for_panel_code("00000-0") is None
    # PHQ-2 items are PHQ-9 items: the smaller instrument wins unless a total code decides.
    assert instrument_for_item_codes(["44250-9", "44255-8"]) is INSTRUMENTS["phq-2"]
    assert instrument_for_item_codes(["44250-9", "44261-6"]) is phq9
    assert instrument_for_item_codes(["44250-9", "44260-8"]) is phq9
    assert instrument_for_item_codes(["44250-9", "69725-0"]) is None


def test_licensed_instruments_ship_no_item_text() -> None:
    for key in ("bdi-ii", "ham-d17"):
        instrument = INSTRUMENTS[key]
        assert instrument.externally_scored
        assert len(instrument.items) == 1 and instrument.items[0].text.endswith("total score")
        assert not instrument.items[0].options


def test_bands_must_tile_the_range() -> None:
    item = Item(link_id="a", text="a", integer_range=(0, 3))
    with pytest.raises(ValueError, match="tile"):
        Instrument(
            key="x",
            title="x",
            version="1",
            panel_loinc=None,
            total_loinc=None,
            items=(item,),
            min_total=0,
            max_total=3,
            bands=(Band(0, 1, "low"), Band(3, 3, "high")),
        )


# (instrument, total, severity band, remission) — hand-written from CLINICAL.md section 2, not from the data.
BAND_TABLE = [
    ("phq-9", 0, "minimal", True),
    ("phq-9", 4, "minimal", True),
    ("phq-9", 5, "mild", False),
    ("phq-9", 9, "mild", False),
    ("phq-9", 10, "moderate", False),
    ("phq-9", 14, "moderate", False),
    ("phq-9", 15, "moderately severe", False),
    ("phq-9", 19, "moderately severe", False),
    ("phq-9", 20, "severe", False),
    ("phq-9", 27, "severe", False),
    ("phq-2", 0, "negative screen", None),
    ("phq-2", 2, "negative screen", None),
    ("phq-2", 3, "positive screen", None),
    ("phq-2", 6, "positive screen", None),
    ("gad-7", 0, "minimal", True),
    ("gad-7", 4, "minimal", True),
    ("gad-7", 5, "mild", False),
    ("gad-7", 9, "mild", False),
    ("gad-7", 10, "moderate", False),
    ("gad-7", 14, "moderate", False),
    ("gad-7", 15, "severe", False),
    ("gad-7", 21, "severe", False),
    ("madrs", 0, "normal", True),
    ("madrs", 6, "normal", True),
    ("madrs", 7, "mild", True),
    ("madrs", 10, "mild", True),
    ("madrs", 11, "mild", False),
    ("madrs", 19, "mild", False),
    ("madrs", 20, "moderate", False),
    ("madrs", 34, "moderate", False),
    ("madrs", 35, "severe", False),
    ("madrs", 60, "severe", False),
    ("qids-sr16", 0, "none", True),
    ("qids-sr16", 5, "none", True),
    ("qids-sr16", 6, "mild", False),
    ("qids-sr16", 10, "mild", False),
    ("qids-sr16", 11, "moderate", False),
    ("qids-sr16", 15, "moderate", False),
    ("qids-sr16", 16, "severe", False),
    ("qids-sr16", 20, "severe", False),
    ("qids-sr16", 21, "very severe", False),
    ("qids-sr16", 27, "very severe", False),
    ("bdi-ii", 0, "minimal", None),
    ("bdi-ii", 13, "minimal", None),
    ("bdi-ii", 14, "mild", None),
    ("bdi-ii", 19, "mild", None),
    ("bdi-ii", 20, "moderate", None),
    ("bdi-ii", 28, "moderate", None),
    ("bdi-ii", 29, "severe", None),
    ("bdi-ii", 63, "severe", None),
    ("ham-d17", 0, None, None),
    ("ham-d17", 52, None, None),
    ("cadss", 0, None, None),
    ("cadss", 92, None, None),
    ("moaa-s", 0, None, None),
    ("moaa-s", 5, None, None),
]


@pytest.mark.parametrize(("key", "total", "band", "remission"), BAND_TABLE)
def test_band_edges_and_remission(key: str, total: int, band: str | None, remission: bool | None) -> None:
    instrument = INSTRUMENTS[key]
    score = score_answers(instrument, answers_for_total(instrument, total))
    assert (score.total, score.severity, score.remission, score.complete) == (total, band, remission, True)


@pytest.mark.parametrize("key", [k for k, i in INSTRUMENTS.items() if i.has_total])
def test_range_limits_reachable(key: str) -> None:
    instrument = INSTRUMENTS[key]
    assert score_answers(instrument, answers_for_total(instrument, instrument.max_total)).total == (
        instrument.max_total
    )


def test_clinical_thresholds_are_data() -> None:
    phq9, gad7 = INSTRUMENTS["phq-9"], INSTRUMENTS["gad-7"]
    assert (phq9.worsening_rise, gad7.worsening_rise) == (5, 4)
    assert phq9.response_reduction == gad7.response_reduction == 0.5
    assert str(INSTRUMENTS["madrs"].remission) == "<= 10"
    assert all(i.proration is None for i in INSTRUMENTS.values())
