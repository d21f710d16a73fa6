"""A metric's line chart as inline SVG, and the zoom links around it.

Why SVG drawn on the server: the page is readable with scripts off and by a screen reader (the
chart's numbers are also a table), and zoom is a new time range in the URL, so a zoomed view is
a link that can be shared. ``static/dash.js`` adds drag-to-zoom, which only builds that URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

#: Bucket sizes the chart picks from: the smallest that gives at most MAX_POINTS points.
STEPS = (60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400)
MAX_POINTS = 240
WIDTH, HEIGHT = 900, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 16, 36
#: Shortest range a zoom may reach (one hour) and the longest (400 days).
MIN_SPAN_S, MAX_SPAN_S = 3600, 400 * 86400
PRESETS = (("6 hours", 6 * 3600), ("1 day", 86400), ("7 days", 7 * 86400), ("30 days", 30 * 86400))


@dataclass(frozen=True)
class Tick:
    at: float  # pixel
    label: str


@dataclass(frozen=True)
class LineChart:
    start: int
    end: int
    step: int
    points: str  # the SVG polyline's "x,y x,y ..."
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    rows: tuple[tuple[str, float], ...]  # (time, value) for the table
    zoom_in: tuple[int, int]
    zoom_out: tuple[int, int]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def clamp_range(start: int, end: int, now: int) -> tuple[int, int]:
    """A sensible range: ordered, not in the future, between one hour and 400 days."""
    end = min(end, now)
    span = min(max(end - start, MIN_SPAN_S), MAX_SPAN_S)
    return end - span, end


def step_for(start: int, end: int) -> int:
    for step in STEPS:
        if (end - start) / step <= MAX_POINTS:
            return step
    return STEPS[-1]


def line_chart(start: int, end: int, step: int, points: Sequence[tuple[int, float]]) -> LineChart:
    top_value = max((v for _, v in points), default=0.0)
    y_max = _nice(top_value)
    w, h = (WIDTH - RIGHT) - LEFT, (HEIGHT - BOTTOM) - TOP

    def x(ts: float) -> float:
        return LEFT + (ts - start) / max(end - start, 1) * w

    def y(v: float) -> float:
        return TOP + h - (v / y_max) * h

    line = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in points)
    span = end - start
    fmt = "%m-%d %H:%M" if span <= 3 * 86400 else "%Y-%m-%d"
    x_ticks = tuple(
        Tick(x(start + span * i / 5), _when(start + span * i / 5, fmt)) for i in range(6)
    )
    y_ticks = tuple(Tick(y(y_max * i / 4), f"{y_max * i / 4:g}") for i in range(5))
    middle = (start + end) // 2
    return LineChart(
        start=start,
        end=end,
        step=step,
        points=line,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        rows=tuple((_when(ts, "%Y-%m-%d %H:%M"), round(v, 2)) for ts, v in points),
        zoom_in=(middle - span // 4, middle + span // 4),
        zoom_out=(middle - span, middle + span),
    )


def _nice(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at or above ``value`` (100 for percentages near it)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** len(str(int(value)))  # a power of ten above value
    for f in (0.1, 0.2, 0.5, 1.0):
        if value <= f * scale:
            return f * scale
    return scale


def _when(ts: float, fmt: str) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)
