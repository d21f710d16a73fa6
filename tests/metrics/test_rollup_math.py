"""The numpy rollup arithmetic equals numpy's own statistics, bucket by bucket."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.metrics.store.rollup_math import bucket_stats


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 20_000), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=1,
        max_size=200,
    ),
    st.sampled_from([60, 300, 3600]),
)
def test_bucket_stats_match_numpy(points: list[tuple[int, float]], resolution: int) -> None:
    ts = np.array([p[0] for p in points], dtype=np.int64)
    values = np.array([p[1] for p in points], dtype=np.float64)
    got = bucket_stats(ts, values, resolution)
    buckets = np.unique(ts - ts % resolution)
    assert got.ts.tolist() == buckets.tolist()
    for i, b in enumerate(buckets):
        v = values[(ts - ts % resolution) == b]
        assert got.count[i] == len(v)
        assert got.min[i] == v.min() and got.max[i] == v.max()
        assert np.isclose(got.avg[i], v.mean(), rtol=1e-9, atol=1e-6)
        assert np.isclose(got.p95[i], np.quantile(v, 0.95), rtol=1e-9, atol=1e-6)
