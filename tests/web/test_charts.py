"""The score chart: it runs to today, marks measurements that fell due and never came, and dates in the reader's
zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service.instruments import INSTRUMENTS
from service.web.charts import LEFT, RIGHT, WIDTH, ChartPoint, score_chart

PHQ9 = INSTRUMENTS["phq-9"]
TODAY = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def _x(svg: str, css: str) -> list[float]:
    return [float(v) for v in re.findall(rf'<line class="{css}" x1="([\d.]+)"', svg)]


def test_the_axis_runs_to_today_so_a_gap_after_the_last_score_shows() -> None:
    points = [ChartPoint(TODAY - timedelta(days=d), 18 - d / 10, f"rec-{d}") for d in (70, 63, 56)]
    svg = str(score_chart(PHQ9, points, [], baseline=18, today=TODAY, tz=UTC))
    [today] = _x(svg, "today-line")
    assert today == WIDTH - RIGHT  # the right edge is today, not the last score (eight weeks earlier)
    last = max(float(v) for v in re.findall(r'<circle class="score-point" cx="([\d.]+)"', svg))
    assert last < LEFT + (today - LEFT) * 0.3
    assert ">today</text>" in svg


def test_each_missed_measurement_is_marked_with_its_due_date() -> None:
    points = [ChartPoint(TODAY - timedelta(days=60), 14, "rec-a")]
    missed = [TODAY - timedelta(days=d) for d in (53, 46, 39, 32, 25, 18, 11, 4)]
    svg = str(score_chart(PHQ9, points, [], baseline=20, today=TODAY, tz=UTC, missed=missed))
    assert svg.count('class="missed-mark"') == 8
    assert "Patient Health Questionnaire-9 (PHQ-9) due 12 Oct 2026: not received" in svg
    assert sorted(_x(svg, "missed-line")) == _x(svg, "missed-line")  # in date order, left of today
    assert max(_x(svg, "missed-line")) < _x(svg, "today-line")[0]


def test_no_mark_when_nothing_was_missed() -> None:
    svg = str(score_chart(PHQ9, [ChartPoint(TODAY, 9, "rec-a")], [], baseline=None, today=TODAY, tz=UTC))
    assert "missed-mark" not in svg


def test_dates_are_in_the_reader_zone() -> None:
    late = datetime(2026, 10, 8, 23, 30, tzinfo=UTC)  # 9 Oct in Sydney
    svg = str(
        score_chart(
            PHQ9, [ChartPoint(late, 12, "rec-a")], [], baseline=None, today=TODAY, tz=ZoneInfo("Australia/Sydney")
        )
    )
    assert "09 Oct 2026: 12" in svg and "08 Oct 2026" not in svg
