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
    """Mean time and value of each UTC day that has samples, each sample weighted by its
    bucket's length, the shorter of its distances to the samples beside it (hourly buckets of
    the past beside 5-minute ones of the last hour count by the time they stand for)."""
    if not len(times):
        return np.zeros(0), np.zeros(0)
    step = np.diff(times) if len(times) > 1 else np.ones(1)
    width = np.maximum(np.minimum(np.append(step, step[-1]), np.insert(step, 0, step[0])), 1.0)
    ok = np.isfinite(values)
    t, v, w = times[ok], values[ok], width[ok]
    if not len(t):
        return np.zeros(0), np.zeros(0)
    day = np.floor(t / DAY).astype(np.int64)
    _, idx = np.unique(day, return_inverse=True)
    weight = np.bincount(idx, w)
    return np.bincount(idx, t * w) / weight, np.bincount(idx, v * w) / weight


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
