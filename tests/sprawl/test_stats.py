"""The vectorised statistics agree with numpy's NaN-aware reference functions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from corral.engines.sprawl import stats

values = st.one_of(st.just(np.nan), st.floats(0, 1e6, width=32))
matrices = arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 40)), elements=values)


@settings(max_examples=80, deadline=None)
@given(matrices, st.sampled_from([0.0, 0.5, 0.95, 1.0]))
def test_row_quantile_matches_nanquantile(a: np.ndarray, q: float) -> None:
    got = stats.row_quantile(a, q)
    for i, row in enumerate(a.astype(np.float64)):
        if np.isnan(row).all():
            assert np.isnan(got[i])
        else:
            assert np.isclose(got[i], np.nanquantile(row, q), rtol=1e-5, atol=1e-3)


@settings(max_examples=50, deadline=None)
@given(matrices)
def test_row_max_and_mean_ignore_nan(a: np.ndarray) -> None:
    mx, mean = stats.row_max(a), stats.row_mean(a)
    for i, row in enumerate(a.astype(np.float64)):
        if np.isnan(row).all():
            assert np.isnan(mx[i]) and np.isnan(mean[i])
        else:
            assert mx[i] == np.nanmax(row)
            assert np.isclose(mean[i], np.nanmean(row), rtol=1e-5)


def test_tail_days_pads_a_partial_first_day_with_nan() -> None:
    a = np.arange(10, dtype=np.float32)[None, :]
    days = stats.tail_days(a, samples_per_day=4, days=5)
    assert days.shape == (1, 3, 4)
    assert np.isnan(days[0, 0, :2]).all() and days[0, 2, 3] == 9
