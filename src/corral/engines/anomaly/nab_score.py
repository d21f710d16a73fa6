"""The Numenta Anomaly Benchmark's scoring rules, to judge an alert column against label windows.

Rules (NAB's "sweeper", rewritten from its description and checked against NAB's published
per-file results of its numenta detector, see tests/monitoring/test_nab_score.py):

- the first ``min(floor(0.15 n), 0.15 * 5000)`` rows of a file are probation: not scored;
- a row inside a label window ``[start, end]`` that is detected scores
  ``tp * sigma(-(right - i + 1) / width) / sigma(-1)``; only the earliest detection of a
  window counts, a window without one costs ``-fn``;
- a detection outside every window costs ``fp * sigma((i - right_prev) / (width_prev - 1))``,
  measured from the previous window's right edge (``-fp`` before the first window),
  where ``sigma(x) = 2 / (1 + exp(5 x)) - 1``, and ``-1`` for ``x > 3``;
- a set of files is normalized to ``100 (S - S_null) / (S_perfect - S_null)``: the null
  detector never alerts, the perfect one alerts at the start of every window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PROBATION = 0.15
PROBATION_CAP_ROWS = 5000


@dataclass(frozen=True)
class CostProfile:
    name: str
    tp: float
    fp: float
    fn: float


STANDARD = CostProfile("standard", tp=1.0, fp=0.11, fn=1.0)
REWARD_LOW_FP = CostProfile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0)
REWARD_LOW_FN = CostProfile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)
PROFILES = {p.name: p for p in (STANDARD, REWARD_LOW_FP, REWARD_LOW_FN)}


@dataclass(frozen=True)
class FileScore:
    """One file's raw score and NAB's point counts (rows after probation)."""

    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    windows: int
    detected_windows: int


def scaled_sigmoid(x: float) -> float:
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def probation_rows(n: int, fraction: float = PROBATION) -> int:
    return int(min(math.floor(fraction * n), fraction * PROBATION_CAP_ROWS))


def window_ids(times: Sequence[float], windows: Sequence[tuple[float, float]]) -> list[int]:
    """For every row, the index of the label window holding it, or -1."""
    ids = [-1] * len(times)
    for w, (start, end) in enumerate(windows):
        for i, t in enumerate(times):
            if start <= t <= end:
                ids[i] = w
    return ids


def row_weights(ids: Sequence[int], profile: CostProfile) -> list[float]:
    """What a detection at each row would score (before the earliest-only rule)."""
    edges: dict[int, tuple[int, int]] = {}
    for i, w in enumerate(ids):
        if w >= 0:
            first, _ = edges.get(w, (i, i))
            edges[w] = (first, i)
    max_tp = scaled_sigmoid(-1.0)
    out: list[float] = []
    prev: tuple[int, int] | None = None  # (right index, width) of the last window passed
    for i, w in enumerate(ids):
        if w >= 0:
            first, right = edges[w]
            width = right - first + 1
            out.append(profile.tp * scaled_sigmoid(-(right - i + 1) / width) / max_tp)
            if i == right:
                prev = (right, width)
        elif prev is None:
            out.append(-profile.fp)
        else:
            right, width = prev
            distance = abs(right - i) / max(width - 1, 1)
            out.append(profile.fp * scaled_sigmoid(distance))
    return out


def score_file(
    times: Sequence[float],
    alerts: Sequence[bool],
    windows: Sequence[tuple[float, float]],
    profile: CostProfile = STANDARD,
) -> FileScore:
    """NAB's score of one file's alert column (``times`` in epoch seconds, sorted)."""
    if len(times) != len(alerts):
        raise ValueError("times and alerts differ in length")
    ids = window_ids(times, windows)
    weights = row_weights(ids, profile)
    start = probation_rows(len(times))
    score = 0.0
    tp = tn = fp = fn = 0
    seen: set[int] = set()
    for i in range(start, len(times)):
        w, hit = ids[i], bool(alerts[i])
        if w >= 0:
            tp, fn = tp + hit, fn + (not hit)
            if hit and w not in seen:
                seen.add(w)
                score += weights[i]
        else:
            fp, tn = fp + hit, tn + (not hit)
            if hit:
                score += weights[i]
    scored_windows = {w for w in ids[start:] if w >= 0}
    score -= profile.fn * len(scored_windows - seen)
    return FileScore(score, tp, tn, fp, fn, len(scored_windows), len(seen))


def null_score(windows: int, profile: CostProfile = STANDARD) -> float:
    return -profile.fn * windows


def normalized(total: float, windows: int, profile: CostProfile = STANDARD) -> float:
    """NAB's 0-100 scale over a set of files holding ``windows`` label windows in all."""
    perfect = profile.tp * windows
    null = null_score(windows, profile)
    return 100.0 * (total - null) / (perfect - null)
