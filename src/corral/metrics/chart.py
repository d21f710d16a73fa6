"""A metric series drawn with Unicode block characters, for a terminal."""

from __future__ import annotations

from collections.abc import Sequence

from corral.metrics.model import Point

BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(
    values: Sequence[float | None], lo: float | None = None, hi: float | None = None
) -> str:
    """One character per value, scaled between ``lo`` and ``hi``; None (a gap) is a space."""
    real = [v for v in values if v is not None]
    if not real:
        return " " * len(values)
    lo = min(real) if lo is None else lo
    hi = max(real) if hi is None else hi
    span = hi - lo
    out = []
    for v in values:
        if v is None:
            out.append(" ")
            continue
        frac = 1.0 if span <= 0 else (min(max(v, lo), hi) - lo) / span
        out.append(BLOCKS[1 + round(frac * (len(BLOCKS) - 2))])
    return "".join(out)


def with_gaps(points: Sequence[Point], start: int, end: int, step: int) -> list[float | None]:
    """Values for every bucket of the range, None where the store had nothing."""
    by_ts = {p.ts: p.value for p in points}
    first = start - start % step
    return [by_ts.get(t) for t in range(first, end, step)]


def rows(values: Sequence[float | None], width: int) -> list[str]:
    """The sparkline folded into lines of at most ``width`` characters."""
    line = sparkline(values)
    return [line[i : i + width] for i in range(0, len(line), width)] or [""]
