"""The detector's promises: causal, one verdict per sample, scores in [0, 1], alerts on news."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.anomaly.detector import DetectorConfig, detect

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
samples = st.lists(st.one_of(finite, st.just(math.nan)), max_size=300)
SMALL = DetectorConfig(warmup=5, quiet=10)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_appending_future_samples_never_changes_past_verdicts(
    past: list[float], future: list[float]
) -> None:
    assert detect(past + future, SMALL)[: len(past)] == detect(past, SMALL)


@settings(max_examples=60, deadline=None)
@given(samples)
def test_one_verdict_per_sample_with_score_in_unit_interval(values: list[float]) -> None:
    verdicts = detect(values, SMALL)
    assert len(verdicts) == len(values)
    assert all(0.0 <= v.score <= 1.0 for v in verdicts)
    assert all(not v.alert for v, x in zip(verdicts, values, strict=True) if math.isnan(x))


def test_a_new_extreme_after_warmup_alerts_once_then_stays_quiet() -> None:
    base = [10.0, 12.0, 11.0, 13.0] * 10
    verdicts = detect([*base, 30.0, 31.0, 32.0, *base], SMALL)
    alerts = [i for i, v in enumerate(verdicts) if v.alert]
    assert alerts == [len(base)]
    assert verdicts[len(base)].score > 0.9
    assert all(v.score == 0.0 for v in verdicts[4 : len(base)])  # first cycle sets the range


def test_nothing_alerts_during_warmup() -> None:
    assert not any(v.alert for v in detect([1.0, 100.0, 1000.0], DetectorConfig(warmup=5)))


def test_a_drop_does_not_hide_a_surge_that_follows() -> None:
    base = [10.0, 12.0, 11.0, 13.0] * 10
    verdicts = detect([*base, 1.0, *base[:4], 40.0], SMALL)
    alerts = [i for i, v in enumerate(verdicts) if v.alert]
    assert alerts == [len(base), len(base) + 5]


def test_a_series_that_starts_to_swing_within_its_range_alerts() -> None:
    config = DetectorConfig(warmup=20, quiet=30, agitation_samples=6)
    calm = [10.0] * 30 + [0.0] + [10.0] * 30  # one dip sets the range 0..10
    swinging = [10.0, 0.0] * 10  # values seen before, but never this restless
    verdicts = detect(calm + swinging, config)
    alerts = [i for i, v in enumerate(verdicts) if v.alert]
    assert alerts == [30, len(calm) + 3]  # the dip, then the swing once its mean change is new


def test_a_value_in_an_empty_gap_of_the_range_alerts_once() -> None:
    config = DetectorConfig(warmup=20, quiet=30, agitation_samples=500)  # the gap rule alone
    daily = [1.0] * 9 + [10.0]  # a floor and a spike, nothing ever in between
    halfway = [1.0] * 5 + [5.0] + [1.0] * 4 + [5.2]  # a level the series has never held
    verdicts = detect(daily * 4 + halfway, config)
    alerts = [i for i, v in enumerate(verdicts) if v.alert]
    assert alerts == [45]  # the second in-between value lands near the first: no new gap
    assert verdicts[45].score > 0.85  # gap 4/9 of the range


def test_a_gap_narrower_than_the_threshold_does_not_alert() -> None:
    config = DetectorConfig(warmup=20, quiet=30, agitation_samples=500)  # the gap rule alone
    steps = [float(x) for x in range(11)] * 4  # 0..10 every cycle: no gap wider than 0.1
    verdicts = detect([*steps, 4.5, 7.5], config)
    assert not any(v.alert for v in verdicts)
