"""Server-drawn SVG: the caseload's sparklines and the patient page's score chart. Pure functions, no I/O.

Styling is by class (the stylesheet colours them), so the Content-Security-Policy needs no inline styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from markupsafe import Markup, escape

from service.instruments import Instrument

SPARK_WIDTH = 84
SPARK_HEIGHT = 24


def sparkline(scores: Sequence[float], max_total: float, label: str) -> Markup:
    """A small trend line of the primary score; its numbers are in the accessible name too."""
    if not scores:
        return Markup("")
    top = max(max_total, *scores) or 1.0
    step = (SPARK_WIDTH - 6) / max(1, len(scores) - 1)
    points = [(3 + i * step, 3 + (SPARK_HEIGHT - 6) * (1 - s / top)) for i, s in enumerate(scores)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    last_x, last_y = points[-1]
    name = f"{label} trend: " + ", ".join(f"{s:g}" for s in scores)
    return Markup(  # noqa: S704 - numbers and escaped text only
        f'<svg class="spark" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}"'
        f' role="img" aria-label="{escape(name)}"><title>{escape(name)}</title>'
        f'<polyline class="spark-line" points="{line}" fill="none"/>'
        f'<circle class="spark-last" cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5"/></svg>'
    )


@dataclass(frozen=True)
class ChartPoint:
    at: datetime
    total: float
    anchor: str  # id of the timeline entry


@dataclass(frozen=True)
class ChartMarker:
    at: datetime
    label: str
    anchor: str


WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 44, 150, 14, 44


def score_chart(
    instrument: Instrument,
    points: Sequence[ChartPoint],
    sessions: Sequence[ChartMarker],
    *,
    baseline: float | None,
    today: datetime,
    tz: tzinfo,
    missed: Sequence[datetime] = (),
) -> Markup:
    """Scores over time on the instrument's severity bands, with baseline, 50 % response and remission lines;
    ketamine sessions are marked on the time axis. The axis runs to today, and each measurement that fell due
    without arriving is marked, so a gap since the last score shows (dates in the reader's zone, `tz`)."""
    if not points:
        return Markup("")
    times = [p.at for p in points] + [s.at for s in sessions] + list(missed) + [today]
    start, end = min(times), max(times)
    if end - start < timedelta(days=2):
        start, end = start - timedelta(days=1), end + timedelta(days=1)
    span = (end - start).total_seconds()
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    low, high = float(instrument.min_total), float(instrument.max_total)

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / span

    def y(score: float) -> float:
        return TOP + plot_h * (1 - (min(max(score, low), high) - low) / (high - low))

    parts: list[str] = []
    # A labelled group, not an image: its points and session marks are links, which an image may not contain.
    title_id = f"chart-{escape(instrument.key)}-title"
    parts.append(
        f'<svg class="score-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="group" aria-labelledby="{title_id}">'
        f'<title id="{title_id}">{escape(instrument.title)} over time</title>'
    )
    for index, band in enumerate(sorted(instrument.bands, key=lambda b: b.low)):
        top_y, bottom_y = y(band.high + 1 if band.high < high else high), y(band.low)
        parts.append(
            f'<rect class="band band-{index % 5}" x="{LEFT}" y="{top_y:.1f}" width="{plot_w}"'
            f' height="{bottom_y - top_y:.1f}"/>'
            f'<text class="band-label" x="{LEFT + plot_w + 6}" y="{(top_y + bottom_y) / 2 + 4:.1f}">'
            f"{escape(band.label)} {band.low}\u2013{band.high}</text>"
        )
    parts.append(f'<rect class="plot-frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none"/>')
    step = _tick_step(high - low)
    tick = low
    while tick <= high:
        parts.append(
            f'<text class="axis-label" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>'
            f'<line class="tick" x1="{LEFT - 3}" x2="{LEFT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
        )
        tick += step
    for when in _date_ticks(start.astimezone(tz), end.astimezone(tz)):
        parts.append(
            f'<text class="axis-label" x="{x(when):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{when:%d %b}</text>'
        )
    for due in missed:
        mx = x(due)
        tip = f"{instrument.title} due {due.astimezone(tz):%d %b %Y}: not received"
        parts.append(
            f'<g class="missed-mark"><line class="missed-line" x1="{mx:.1f}" x2="{mx:.1f}" y1="{TOP}"'
            f' y2="{TOP + plot_h}"/><path class="missed-cross" d="M{mx - 4:.1f},{TOP + 2} l8,8 m0,-8 l-8,8">'
            f"<title>{escape(tip)}</title></path></g>"
        )
    tx = x(today)
    parts.append(
        f'<line class="today-line" x1="{tx:.1f}" x2="{tx:.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>'
        f'<text class="today-label" x="{tx - 3:.1f}" y="{TOP + plot_h - 4}" text-anchor="end">today</text>'
    )
    reference_lines: list[tuple[float, str, str]] = []
    if baseline is not None:
        reference_lines.append((baseline, "ref-baseline", f"baseline {baseline:g}"))
        if instrument.response_reduction is not None:
            target = baseline * (1 - instrument.response_reduction)
            reference_lines.append((target, "ref-response", f"{instrument.response_reduction:.0%} response {target:g}"))
    if instrument.remission is not None:
        reference_lines.append((instrument.remission.value, "ref-remission", f"remission {instrument.remission}"))
    for value, css, label in reference_lines:
        parts.append(
            f'<line class="{css}" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="ref-label {css}-label" x="{LEFT + 4}" y="{y(value) - 3:.1f}">{escape(label)}</text>'
        )
    for session in sessions:
        sx = x(session.at)
        base_y = TOP + plot_h
        parts.append(
            f'<a href="#{escape(session.anchor)}"><path class="session-mark" d="M{sx:.1f},{base_y + 2} '
            f'l-5,9 h10 z"><title>{escape(session.label)}</title></path></a>'
        )
    ordered = sorted(points, key=lambda p: p.at)
    line = " ".join(f"{x(p.at):.1f},{y(p.total):.1f}" for p in ordered)
    parts.append(f'<polyline class="score-line" points="{line}" fill="none"/>')
    for p in ordered:
        band_label = instrument.band_for(p.total)
        tip = f"{p.at.astimezone(tz):%d %b %Y}: {p.total:g}" + (f" ({band_label})" if band_label else "")
        parts.append(
            f'<a href="#{escape(p.anchor)}"><circle class="score-point" cx="{x(p.at):.1f}" cy="{y(p.total):.1f}"'
            f' r="4"><title>{escape(tip)}</title></circle></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only


def _tick_step(span: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50):
        if span / step <= 7:
            return float(step)
    return 100.0


def _date_ticks(start: datetime, end: datetime) -> list[datetime]:
    days = max(1, (end - start).days)
    every = max(1, round(days / 6))
    first = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    ticks: list[datetime] = []
    when = first
    while when <= end:
        ticks.append(when)
        when += timedelta(days=every)
    return ticks
