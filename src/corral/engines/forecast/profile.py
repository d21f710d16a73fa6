"""A recent daily profile, shrunk toward the recent median, with a band from its own backtests.

Why this model: VM load (Bitbrains' enterprise VMs, Corral's own history) is spiky, shifts level
from week to week and repeats a day's shape only loosely. Judged by absolute error, the median of
the same hour over the last week beats both repeating the last day or week (seasonal naive) and
Holt-Winters, whose trend and mean-based fit chase the spikes (benchmarks/bench_forecast.py).

- Samples are averaged into ``step`` buckets on the grid of ``start``; only samples before
  ``start`` are used.
- The forecast of a bucket is ``(1 - shrink) * P + shrink * M``: ``P`` the median of the buckets
  of the last ``window`` at the same phase of ``season`` (hour of day), ``M`` the median of the
  whole window (a shape seen only a few times is not trusted fully).
- The band: the same forecast is made from earlier points of the history (``backtests`` origins,
  one ``window`` apart) for the window that followed; the ``coverage`` quantile of the absolute
  errors gives ``forecast +- width``. A series never below zero gets a lower bound of at least 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from corral.errors import ValidationError

FloatArray = npt.NDArray[np.float64]
DAY = 86400.0


@dataclass(frozen=True)
class ForecastConfig:
    season: float = DAY  # seconds of one cycle of the profile
    window: float = 7 * DAY  # recent history the profile and the median are taken from
    shrink: float = 0.3  # weight of the window's median against the profile
    coverage: float = 0.8  # share of future step means the band should hold
    backtests: int = 4  # earlier origins whose errors size the band


DEFAULT_CONFIG = ForecastConfig()


@dataclass(frozen=True)
class ForecastStep:
    time: float  # start of the step, epoch seconds
    forecast: float
    lower: float
    upper: float


def bucket_means(
    times: Sequence[float], values: Sequence[float], start: float, step: float
) -> FloatArray:
    """Mean of the samples in each ``step`` bucket before ``start`` (oldest first; NaN if empty)."""
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    keep = (t < start) & np.isfinite(v)
    if not keep.any():
        return np.empty(0)
    idx = np.floor((t[keep] - start) / step).astype(np.int64)  # negative: before start
    offset = -int(idx.min())
    sums = np.bincount(idx + offset, weights=v[keep], minlength=offset)
    counts = np.bincount(idx + offset, minlength=offset)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _point_forecast(
    history: FloatArray, ahead: int, period: int, window: int, shrink: float
) -> FloatArray:
    """Forecasts for the ``ahead`` buckets right after ``history`` (which ends at a bucket)."""
    n = len(history)
    recent = history[max(0, n - window) :]
    first = n - len(recent)
    overall = float(np.nanmedian(recent)) if np.isfinite(recent).any() else 0.0
    phase_median = np.full(period, overall)
    for p in range(period):
        same = recent[(np.arange(first, n) - p) % period == 0]
        same = same[np.isfinite(same)]
        if len(same):
            phase_median[p] = float(np.median(same))
    phases = np.arange(n, n + ahead) % period
    result: FloatArray = (1.0 - shrink) * phase_median[phases] + shrink * overall
    return result


def _band(history: FloatArray, period: int, window: int, config: ForecastConfig) -> float:
    errors: list[FloatArray] = []
    n = len(history)
    for k in range(1, config.backtests + 1):
        end = n - k * window
        if end < period:
            break
        truth = history[end : end + window]
        guess = _point_forecast(history[:end], len(truth), period, window, config.shrink)
        errors.append(np.abs(truth - guess))
    if not errors:  # too short to look back: the fit's own errors on the last window
        recent = history[max(0, n - window) :]
        fitted = _point_forecast(history[: n - len(recent)], len(recent), period, window, 0.0)
        errors.append(
            np.abs(recent - fitted) if n > len(recent) else np.abs(recent - np.nanmedian(recent))
        )
    pooled = np.concatenate(errors)
    pooled = pooled[np.isfinite(pooled)]
    return float(np.quantile(pooled, config.coverage)) if len(pooled) else 0.0


def forecast(
    times: Sequence[float],
    values: Sequence[float],
    start: float,
    horizon: float,
    step: float,
    config: ForecastConfig = DEFAULT_CONFIG,
) -> list[ForecastStep]:
    """The mean of each ``step`` from ``start`` to ``start + horizon`` with its band."""
    if step <= 0 or horizon < step:
        raise ValidationError("the step must be positive and the horizon at least one step.")
    history = bucket_means(times, values, start, step)
    if not np.isfinite(history).any():
        raise ValidationError("no samples before the forecast start; give history before --start.")
    period = max(1, round(config.season / step))
    window = max(period, round(config.window / step))
    observed = int(np.flatnonzero(np.isfinite(history))[-1]) + 1
    gap = len(history) - observed  # empty buckets between the last sample and the start
    history = history[:observed]
    steps = int(horizon // step)
    ahead = _point_forecast(history, gap + steps, period, window, config.shrink)[gap:]
    width = _band(history, period, window, config)
    floor = 0.0 if float(np.nanmin(history)) >= 0 else -math.inf
    return [
        ForecastStep(start + i * step, float(f), max(floor, float(f) - width), float(f) + width)
        for i, f in enumerate(ahead)
    ]
