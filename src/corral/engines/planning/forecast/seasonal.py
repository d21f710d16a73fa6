"""Trend plus daily/weekly seasonality, fitted by least squares with numpy.

Model: ``y(t) = a + b t + sum_k [c_k sin(2 pi k t / P) + d_k cos(2 pi k t / P)]``
for P = 1 day (k = 1..3) and P = 1 week (k = 1..2). A seasonal period is used
only when the history covers at least two of it, so short histories fall back
to a plain linear trend. This is linear regression on a Fourier basis (the
seasonal part of Prophet-style models without changepoints); it is chosen over
Holt-Winters because it needs no tuning, handles irregular sampling and
extrapolates a trend that is easy to explain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corral.engines.planning.state import FloatArray
from corral.errors import ValidationError

DAY = 86400.0
WEEK = 7 * DAY
#: (period seconds, harmonics)
SEASONS: tuple[tuple[float, int], ...] = ((DAY, 3), (WEEK, 2))
METHOD = "least-squares linear trend + Fourier daily (3) and weekly (2) seasonality"


@dataclass(frozen=True)
class SeasonalFit:
    t0: float
    coef: FloatArray
    periods: tuple[tuple[float, int], ...]
    residual_q95: float
    r2: float

    @property
    def slope_per_day(self) -> float:
        return float(self.coef[1] * DAY)

    @property
    def method(self) -> str:
        used = {DAY: "daily", WEEK: "weekly"}
        names = [used[p] for p, _ in self.periods]
        return (
            METHOD
            if len(names) == 2
            else "least-squares linear trend"
            + (f" + Fourier {names[0]} seasonality" if names else "")
        )

    def predict(self, t: FloatArray) -> FloatArray:
        return np.asarray(_design(t - self.t0, self.periods) @ self.coef, dtype=np.float64)


def _design(t: FloatArray, periods: tuple[tuple[float, int], ...]) -> FloatArray:
    cols = [np.ones_like(t), t]
    for period, harmonics in periods:
        for k in range(1, harmonics + 1):
            w = 2 * np.pi * k * t / period
            cols += [np.sin(w), np.cos(w)]
    return np.column_stack(cols)


def fit(times: FloatArray, values: FloatArray) -> SeasonalFit:
    """Fit the model to a history (timestamps in seconds)."""
    if times.size < 3 or times.size != values.size:
        raise ValidationError("A usage history needs at least 3 samples with one value each.")
    order = np.argsort(times)
    t, y = times[order].astype(np.float64), values[order].astype(np.float64)
    span = float(t[-1] - t[0])
    periods = tuple((p, h) for p, h in SEASONS if span >= 2 * p and t.size > 4 * h + 2)
    x = _design(t - t[0], periods)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return SeasonalFit(
        float(t[0]),
        np.asarray(coef, dtype=np.float64),
        periods,
        float(np.quantile(resid, 0.95)),
        r2,
    )
