"""Baselines: learning until a week is seen, a band per hour of the week, gaps filled."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.baseline import BaselineState, learn
from corral.engines.baseline.hour_of_week import EPOCH_MONDAY, HOUR, hour_of_week

MONDAY = EPOCH_MONDAY + 2900 * 7 * 24 * HOUR  # a Monday 00:00 UTC in 2025


def _office(days: float, step: float = 900.0) -> tuple[list[float], list[float]]:
    times = [MONDAY + i * step for i in range(int(days * 24 * HOUR / step))]
    busy = [80.0 if 9 <= (t - MONDAY) // HOUR % 24 < 17 else 10.0 for t in times]
    return times, busy


def test_learning_until_a_week_then_bands_follow_office_hours() -> None:
    assert learn(*_office(6)).state is BaselineState.learning
    baseline = learn(*_office(14))
    assert baseline.state is BaselineState.ready and baseline.hours_seen == 168
    noon, night = baseline.band_at(MONDAY + 12 * HOUR), baseline.band_at(MONDAY + 3 * HOUR)
    assert noon is not None and night is not None
    assert noon.median == 80.0 and night.median == 10.0


def test_an_hour_never_seen_borrows_the_whole_week_band() -> None:
    times, values = _office(14)
    kept = [(t, v) for t, v in zip(times, values, strict=True) if hour_of_week(t) != 5]
    baseline = learn([t for t, _ in kept], [v for _, v in kept])
    band = baseline.band_at(MONDAY + 5 * HOUR)
    assert baseline.state is BaselineState.ready and baseline.hours_seen == 167
    assert band is not None and band.low == 10.0 and band.high == 80.0


def test_monday_is_hour_zero() -> None:
    assert hour_of_week(MONDAY) == 0 and hour_of_week(MONDAY - HOUR) == 167


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=700, max_size=900))
def test_every_band_holds_its_median(values: list[float]) -> None:
    times = [MONDAY + i * HOUR for i in range(len(values))]
    baseline = learn(times, values)
    assert baseline.state is BaselineState.ready
    assert all(b.low <= b.median <= b.high for b in baseline.bands)
