"""Bucket statistics of one series in numpy: the rollup arithmetic, shared and testable.

p95 uses linear interpolation between the two nearest ranks (numpy's default,
DuckDB's ``quantile_cont``, PromQL's ``quantile_over_time``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corral.domain.metrics import FloatArray, IntArray


@dataclass(frozen=True)
class BucketStats:
    ts: IntArray
    count: IntArray
    min: FloatArray
    avg: FloatArray
    max: FloatArray
    p95: FloatArray


def bucket_stats(ts: IntArray, values: FloatArray, resolution: int, q: float = 0.95) -> BucketStats:
    """count/min/avg/max/p95 of ``values`` per ``resolution``-second bucket (buckets with data)."""
    b = ts - ts % resolution
    order = np.lexsort((values, b))
    b, v = b[order], values[order]
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    counts = np.diff(np.r_[starts, len(b)])
    sums = np.add.reduceat(v, starts)
    pos = starts + q * (counts - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, starts + counts - 1)
    p95 = v[lo] + (v[hi] - v[lo]) * (pos - lo)
    last = starts + counts - 1
    return BucketStats(b[starts], counts, v[starts], sums / counts, v[last], p95)
