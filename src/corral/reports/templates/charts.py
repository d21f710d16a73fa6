"""Inline SVG charts drawn in Python: horizontal stacked bars and stacked areas over time.

Each chart is an <svg role="img"> labelled by its <title> and <desc>, whose
text states every number (the page repeats them in a table).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.engines.sprawl import Category
from corral.reports.history import MonthWaste
from corral.reports.templates.elements import Element, el, money


@dataclass(frozen=True)
class Bar:
    label: str
    values: tuple[float, ...]  # stacked segments
    count: int = 0
    colours: tuple[str, ...] = ()  # one per segment


BLUE, LIGHT_BLUE, RISK_COLOUR = "#2f6db5", "#8fb8e8", "#e0a030"
HISTORY_COLOURS: Mapping[Category, str] = {
    Category.powered_off: BLUE,
    Category.lease_expired: "#7a4fa3",
    Category.orphaned_disk: "#3a9a6b",
}
CHART_W = 1000
LABEL_CHARS = 28  # bar labels longer than this are cut (about 230 px at 14 px)
Legend = Sequence[tuple[str, str]]  # (label, colour)


def _svg(chart_id: str, height: int, title: str, desc: str) -> Element:
    return el(
        "svg",
        {
            "viewBox": f"0 0 {CHART_W} {height}",
            "width": CHART_W,
            "height": height,
            "role": "img",
            "aria-labelledby": f"{chart_id}-title {chart_id}-desc",
            "class": "chart",
            "id": chart_id,
        },
        el("title", {"id": f"{chart_id}-title"}, title),
        el("desc", {"id": f"{chart_id}-desc"}, desc),
    )


def bar_chart(
    chart_id: str, title: str, bars: Sequence[Bar], legend: Legend, currency: str
) -> Element:
    """Horizontal bars; a bar's values are stacked segments coloured by ``Bar.colours``."""
    row_h, left, right, top = 30, 240, 130, 38
    height = top + row_h * max(1, len(bars)) + 10
    peak = max((sum(b.values) for b in bars), default=0.0) or 1.0
    scale = (CHART_W - left - right) / peak
    desc = "; ".join(f"{b.label}: {money(sum(b.values), currency)} a month" for b in bars)
    svg = _svg(chart_id, height, title, desc or "no waste found")
    svg.append(_legend(legend, left))
    for i, b in enumerate(bars):
        svg.append(_bar_row(b, top + i * row_h, row_h, left, scale, currency))
    return svg


def _short(label: str, limit: int) -> str:
    """Long labels are cut with an ellipsis; the full text is in the bar's <title> and table."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _legend(items: Legend, left: int) -> Element:
    g = el("g", {"class": "legend"})
    x = left
    for name, colour in items:
        g.append(el("rect", {"x": x, "y": 8, "width": 14, "height": 14, "rx": 2, "fill": colour}))
        g.append(el("text", {"x": x + 20, "y": 20}, name))
        x += 40 + 7 * len(name)
    return g


def _bar_row(b: Bar, y: int, row_h: int, left: int, scale: float, currency: str) -> Element:
    g = el("g", {"class": "bar"}, el("title", None, b.label))
    where = {"x": left - 10, "y": y + row_h / 2 + 5, "text-anchor": "end"}
    g.append(el("text", where, _short(b.label, LABEL_CHARS)))
    x = float(left)
    for value, colour in zip(b.values, b.colours or (BLUE,) * len(b.values), strict=False):
        w = max(0.0, value * scale)
        box = {"x": f"{x:.1f}", "y": y + 4, "width": f"{w:.1f}", "height": row_h - 8}
        g.append(el("rect", {**box, "fill": colour}))
        x += w
    label = money(sum(b.values), currency) + (f" · {b.count}" if b.count else "")
    g.append(el("text", {"x": f"{x + 8:.1f}", "y": y + row_h / 2 + 5, "class": "value"}, label))
    return g


def history_chart(chart_id: str, points: Sequence[MonthWaste], currency: str) -> Element:
    """Stacked areas of the waste categories per month end, and the at-risk money as a line."""
    height, left, right, top, bottom = 320, 80, 30, 44, 36
    desc = "; ".join(
        f"{p.at:%Y-%m-%d}: waste {money(p.waste, currency)}, at risk {money(p.at_risk, currency)}"
        for p in points
    )
    svg = _svg(chart_id, height, "Waste over time (per month end)", desc or "no history yet")
    legend = [(c.value, colour) for c, colour in HISTORY_COLOURS.items()]
    svg.append(_legend([*legend, ("no owner: at risk (dashed)", RISK_COLOUR)], left))
    if not points:
        return svg
    peak = max(max(p.waste, p.at_risk) for p in points) or 1.0
    step = _nice_step(peak)
    top_value = step * math.ceil(peak / step)
    plot_w, plot_h = CHART_W - left - right, height - top - bottom

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2)
        return x, top + plot_h * (1 - v / top_value)

    svg.append(_grid(step, top_value, left, CHART_W - right, xy, currency))
    base = [0.0] * len(points)
    for cat, colour in HISTORY_COLOURS.items():
        upper = [b + p.monthly.get(cat, 0.0) for b, p in zip(base, points, strict=True)]
        ring = [xy(i, v) for i, v in enumerate(upper)]
        ring += [xy(i, v) for i, v in reversed(list(enumerate(base)))]
        svg.append(el("polygon", {"points": _pts(ring), "fill": colour, "opacity": "0.9"}))
        base = upper
    risk = [xy(i, p.at_risk) for i, p in enumerate(points)]
    line = {"fill": "none", "stroke": RISK_COLOUR, "stroke-width": 3, "stroke-dasharray": "8 5"}
    svg.append(el("polyline", {"points": _pts(risk), **line}))
    svg.append(_x_labels(points, xy, plot_w, height - bottom + 20))
    return svg


def _pts(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _nice_step(peak: float) -> float:
    raw = peak / 4
    magnitude = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * magnitude:
            return float(mult * magnitude)
    return float(10 * magnitude)


def _grid(step: float, top_value: float, x0: int, x1: int, xy: Any, currency: str) -> Element:
    g = el("g", {"class": "grid"})
    v = 0.0
    while v <= top_value + 1e-9:
        _, y = xy(0, v)
        g.append(el("line", {"x1": x0, "x2": x1, "y1": f"{y:.1f}", "y2": f"{y:.1f}"}))
        g.append(
            el("text", {"x": x0 - 6, "y": f"{y + 4:.1f}", "text-anchor": "end"}, money(v, currency))
        )
        v += step
    return g


def _x_labels(points: Sequence[MonthWaste], xy: Any, plot_w: int, y: int) -> Element:
    """Month labels, thinned so that they stay at least 70 px apart; the last point is now."""
    g = el("g", {"class": "axis"})
    every = max(1, math.ceil(70 * (len(points) - 1) / plot_w)) if len(points) > 1 else 1
    last = len(points) - 1
    for i, p in enumerate(points):
        if (i % every == 0 and last - i >= every) or i == last:
            x, _ = xy(i, 0.0)
            label = "now" if i == last else f"{p.at:%b %Y}"
            g.append(el("text", {"x": f"{x:.1f}", "y": y, "text-anchor": "middle"}, label))
    return g
