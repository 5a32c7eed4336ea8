"""Server-drawn SVG for the outcomes page: Kaplan-Meier curves with their bands, and response/remission bars.
Pure functions, no I/O; styled by class (the stylesheet colours them), numbers in the accessible table beside.

Drawn on a 360-unit-wide viewBox that scales to the column, so the text stays readable on a 390 px phone.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from service.outcomes.durability import GroupCurve
from service.outcomes.report import MilestoneReport

W, H = 360, 250
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 12, 58


def _vertices(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """A step function's corners: flat until the next time, then straight down (or up) to its value."""
    out: list[tuple[float, float]] = []
    for day, value in points:
        if out:
            out.append((day, out[-1][1]))
        out.append((day, value))
    return out


def survival_chart(groups: Sequence[GroupCurve], chart_id: str) -> Markup:
    shown = [g for g in groups if not g.suppressed and g.curve]
    if not shown:
        return Markup("")
    end_day = max(max(p.day for p in g.curve) for g in shown)
    end_day = max(28.0, float(-(-end_day // 28) * 28))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(day: float) -> float:
        return LEFT + plot_w * day / end_day

    def y(share: float) -> float:
        return TOP + plot_h * (1 - share)

    parts = [
        f'<svg class="outcome-chart km-chart" viewBox="0 0 {W} {H}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">Share of responders still free of relapse, by CBT adherence</title>'
        f'<desc id="{chart_id}-desc">Kaplan-Meier estimates with 95% confidence bands; the numbers are in the '
        "table beside the chart.</desc>"
    ]
    for share in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(share):.1f}" y2="{y(share):.1f}"/>'
            f'<text class="axis-label" x="{LEFT - 4}" y="{y(share) + 4:.1f}" text-anchor="end">{share:.0%}</text>'
        )
    step = 28 if end_day <= 28 * 8 else 56
    for day in range(0, int(end_day) + 1, step):
        parts.append(
            f'<text class="axis-label" x="{x(day):.1f}" y="{TOP + plot_h + 14}" text-anchor="middle">{day // 7}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h + 30}" text-anchor="middle">'
        "weeks since first response</text>"
    )
    for index, g in enumerate(shown):
        edge = _vertices([(p.day, p.upper) for p in g.curve]) + _vertices([(p.day, p.lower) for p in g.curve])[::-1]
        band = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in edge)
        parts.append(f'<polygon class="km-band km-band-{index}" points="{band}"/>')
    for index, g in enumerate(shown):
        line = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in _vertices([(p.day, p.survival) for p in g.curve]))
        parts.append(f'<polyline class="km-line km-line-{index}" points="{line}" fill="none"/>')
    for index, g in enumerate(shown):
        lx, ly = LEFT + index * 160, H - 6
        parts.append(
            f'<line class="km-line km-line-{index}" x1="{lx}" x2="{lx + 22}" y1="{ly - 4}" y2="{ly - 4}"/>'
            f'<text class="legend" x="{lx + 26}" y="{ly}">{escape(g.label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only


def milestone_chart(milestones: Sequence[MilestoneReport], chart_id: str, min_cell: int) -> Markup:
    """Response and remission rates per milestone as paired horizontal bars; a suppressed rate reads "< n"."""
    row_h = 34
    height = TOP + row_h * len(milestones) + 30
    label_w, plot_w = 96, W - 96 - RIGHT - 34
    parts = [
        f'<svg class="outcome-chart bar-chart" viewBox="0 0 {W} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">Response and remission rates by milestone</title>'
        f'<desc id="{chart_id}-desc">Bars are shares of the patients due at each milestone; the counts are in the '
        "table beside the chart.</desc>"
    ]
    for i, m in enumerate(milestones):
        top = TOP + i * row_h
        parts.append(
            f'<text class="axis-label" x="{label_w - 6}" y="{top + 17}" text-anchor="end">{escape(m.label)}</text>'
        )
        for j, (rate, css) in enumerate(((m.response, "bar-response"), (m.remission, "bar-remission"))):
            bar_y = top + 3 + j * 14
            if rate.rate is None:
                if not rate.suppressed or rate.denominator.value == 0:
                    words = "none due"
                else:
                    words = "hidden" if rate.numerator.reason == "complementary" else f"< {min_cell} patients"
                parts.append(f'<text class="bar-note" x="{label_w + 2}" y="{bar_y + 10}">{escape(words)}</text>')
                continue
            width = plot_w * rate.rate
            parts.append(
                f'<rect class="{css}" x="{label_w}" y="{bar_y}" width="{width:.1f}" height="12"/>'
                f'<text class="bar-value" x="{label_w + width + 4:.1f}" y="{bar_y + 10}">{rate.rate:.0%}</text>'
            )
    legend_y = TOP + row_h * len(milestones) + 14
    parts.append(
        f'<rect class="bar-response" x="{label_w}" y="{legend_y - 9}" width="12" height="10"/>'
        f'<text class="legend" x="{label_w + 16}" y="{legend_y}">response</text>'
        f'<rect class="bar-remission" x="{label_w + 100}" y="{legend_y - 9}" width="12" height="10"/>'
        f'<text class="legend" x="{label_w + 116}" y="{legend_y}">remission</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only
