"""The forecast engine's promises: one step per step, a band around it, only the past used."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.forecast import ForecastConfig, bucket_means, forecast
from corral.errors import ValidationError

HOUR = 3600.0
DAY = 24 * HOUR
START = 1_700_006_400.0  # a whole hour

values = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    n = draw(st.integers(min_value=1, max_value=400))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=7200), min_size=n, max_size=n))
    times, t = [], START - sum(gaps)
    for g in gaps:
        times.append(t)
        t += g
    return times, draw(st.lists(values, min_size=n, max_size=n))


@settings(max_examples=25, deadline=None)
@given(histories(), st.integers(min_value=1, max_value=72))
def test_one_step_each_with_forecast_inside_its_band(
    history: tuple[list[float], list[float]], hours: int
) -> None:
    times, vals = history
    steps = forecast(times, vals, START, hours * HOUR, HOUR)
    assert [s.time for s in steps] == [START + i * HOUR for i in range(hours)]
    assert all(0 <= s.lower <= s.forecast <= s.upper for s in steps)
    assert all(math.isfinite(s.upper) for s in steps)


@settings(max_examples=25, deadline=None)
@given(histories(), st.lists(values, min_size=1, max_size=50))
def test_samples_from_the_start_on_change_nothing(
    history: tuple[list[float], list[float]], later: list[float]
) -> None:
    times, vals = history
    more_times = times + [START + i * 600 for i in range(len(later))]
    before = forecast(times, vals, START, 24 * HOUR, HOUR)
    assert forecast(more_times, vals + later, START, 24 * HOUR, HOUR) == before


def test_a_daily_shape_is_forecast_and_a_flat_series_has_no_band() -> None:
    times = [START - 21 * DAY + i * 300 for i in range(21 * 288)]
    shape = [100.0 if (t % DAY) >= 12 * HOUR else 10.0 for t in times]
    steps = forecast(times, shape, START, DAY, HOUR, ForecastConfig(shrink=0.0))
    assert [s.forecast for s in steps] == [
        100.0 if (s.time % DAY) >= 12 * HOUR else 10.0 for s in steps
    ]
    flat = forecast(times, [5.0] * len(times), START, DAY, HOUR)
    assert all((s.lower, s.forecast, s.upper) == (5.0, 5.0, 5.0) for s in flat)


def test_bucket_means_average_each_step_and_leave_gaps_empty() -> None:
    means = bucket_means([START - 7200, START - 7000, START - 10], [1.0, 3.0, 9.0], START, HOUR)
    assert means[0] == 2.0 and means[1] == 9.0 and len(means) == 2
    gappy = bucket_means([START - 3 * HOUR], [1.0], START, HOUR)
    assert gappy[0] == 1.0 and all(math.isnan(v) for v in gappy[1:])


def test_no_history_before_the_start_is_refused() -> None:
    with pytest.raises(ValidationError, match="no samples before"):
        forecast([START + 10], [1.0], START, DAY, HOUR)
    with pytest.raises(ValidationError, match="step"):
        forecast([START - 10], [1.0], START, HOUR, 2 * HOUR)
