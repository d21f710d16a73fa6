"""A memory leak: used memory rising steadily for days, projected to the day it is full.

Why these tests: a leak is not a busy day. The series is averaged per day; a leak needs
``min_days`` of daily means, a robust slope (Theil-Sen: the median of the slopes between every
pair of days, so one spike or one restart's dip does not make or break it) of at least
``min_per_day`` points a day, and most days higher than the day before (``rising_share``).
The exhaustion date is where that line (its intercept the median of ``value - slope * day``)
reaches ``full``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
DAY = 86400.0


@dataclass(frozen=True)
class LeakConfig:
    min_days: int = 3
    min_per_day: float = 0.5  # percentage points of memory a day
    rising_share: float = 0.75  # share of day-to-day steps that must rise
    full: float = 100.0


@dataclass(frozen=True)
class LeakTrend:
    start: float  # first day of the history judged, epoch seconds
    days: float
    per_day: float  # slope, points a day
    exhaustion_at: float  # epoch seconds when the line reaches ``full``


def daily_means(times: FloatArray, values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean time and value of each UTC day that has samples."""
    ok = np.isfinite(values)
    t, v = times[ok], values[ok]
    if not len(t):
        return np.zeros(0), np.zeros(0)
    day = np.floor(t / DAY).astype(np.int64)
    _, idx = np.unique(day, return_inverse=True)
    counts = np.bincount(idx)
    return np.bincount(idx, t) / counts, np.bincount(idx, v) / counts


def theil_sen(x: FloatArray, y: FloatArray) -> float:
    i, j = np.triu_indices(len(x), k=1)
    return float(np.median((y[j] - y[i]) / (x[j] - x[i])))


DEFAULT_LEAK = LeakConfig()


def leak_trend(
    times: FloatArray, values: FloatArray, config: LeakConfig = DEFAULT_LEAK
) -> LeakTrend | None:
    """The leak's trend, or None when the series does not grow steadily."""
    t, v = daily_means(times, values)
    if len(t) < config.min_days:
        return None
    per_day = theil_sen(t / DAY, v)
    steps = np.diff(v)
    if per_day < config.min_per_day or float(np.mean(steps > 0)) < config.rising_share:
        return None
    intercept = float(np.median(v - per_day * t / DAY))
    exhaustion = max((config.full - intercept) / per_day * DAY, float(t[-1]))
    if not math.isfinite(exhaustion):
        return None
    return LeakTrend(float(t[0]), float((t[-1] - t[0]) / DAY), per_day, exhaustion)
