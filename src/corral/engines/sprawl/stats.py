"""Row-wise, NaN-aware statistics on (VMs, samples) arrays, vectorised for large fleets.

Why not ``np.nanpercentile``: it loops in Python over rows with NaNs and is two
orders of magnitude slower at fleet scale. Sorting each row puts NaNs last, so a
per-row quantile index from the count of valid samples is exact.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from corral.engines.sprawl.model import FloatArray

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Float64Array = npt.NDArray[np.float64]


def tail_days(arr: FloatArray, samples_per_day: int, days: int) -> FloatArray:
    """The last ``days`` whole days of each row, shaped (VMs, days, samples_per_day).

    A partial first day is padded in front with NaN so days end where the data ends.
    """
    take = min(arr.shape[1], days * samples_per_day)
    tail = arr[:, arr.shape[1] - take :]
    n_days = -(-take // samples_per_day)
    pad = n_days * samples_per_day - take
    if pad:
        filler = np.full((arr.shape[0], pad), np.nan, dtype=arr.dtype)
        tail = np.concatenate([filler, tail], axis=1)
    return tail.reshape(arr.shape[0], n_days, samples_per_day)


def take_rows(arr: FloatArray, idx: IntArray) -> FloatArray:
    """Rows ``idx`` of ``arr``: a view when they are all rows in order, else a copy."""
    if len(idx) == arr.shape[0] and (len(idx) == 0 or (idx[0] == 0 and np.all(np.diff(idx) == 1))):
        return arr
    return arr[idx]


def valid_count(arr: FloatArray) -> IntArray:
    counts: IntArray = np.count_nonzero(~np.isnan(arr), axis=-1).astype(np.int64)
    return counts


def row_max(arr: FloatArray) -> Float64Array:
    """Max over the last axis ignoring NaN; NaN where a row has no valid sample."""
    filled = np.where(np.isnan(arr), -np.inf, arr).max(axis=-1).astype(np.float64)
    return np.where(np.isneginf(filled), np.nan, filled)


def row_mean(arr: FloatArray) -> Float64Array:
    """Mean over the last axis ignoring NaN; NaN where a row has no valid sample."""
    valid = ~np.isnan(arr)
    total = np.where(valid, arr, 0).sum(axis=-1, dtype=np.float64)
    count = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def row_quantile(arr: FloatArray, q: float) -> Float64Array:
    """Linear-interpolated quantile ``q`` (0..1) of each row, ignoring NaN."""
    ordered = np.sort(arr, axis=-1)  # NaN sorts last
    count = valid_count(arr)
    pos = q * np.maximum(count - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    lo_v = np.take_along_axis(ordered, lo[..., None], axis=-1)[..., 0].astype(np.float64)
    hi_v = np.take_along_axis(ordered, hi[..., None], axis=-1)[..., 0].astype(np.float64)
    out = lo_v + (hi_v - lo_v) * (pos - lo)
    return np.where(count > 0, out, np.nan)


def median_of_daily_peaks(days: FloatArray, min_samples_per_day: int) -> Float64Array:
    """Median over days of each day's maximum; days with too few samples are left out."""
    peaks = row_max(days)
    peaks = np.where(valid_count(days) >= min_samples_per_day, peaks, np.nan)
    return row_quantile(peaks.astype(np.float32), 0.5)
