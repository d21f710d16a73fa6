"""An hour-of-week profile with a band, learned from a series' own history.

Why this shape: a VM's load repeats by hour of the week (office hours, nightly batches,
weekends), so "normal" depends on when. For each of the 168 hours of the week the baseline
keeps the median and a band (``low_q``..``high_q`` quantiles) of the samples that fell in that
hour over the last ``weeks`` weeks of history.

Learning: until the history spans ``learn_days`` days (7 by default: every hour of the week
seen once) with samples in at least ``min_hour_share`` of the 168 hours, the baseline says
``learning`` and gives no band, rather than a band from too little. An hour without samples
(a gap, a VM off, a migration that paused collection) borrows the band of the whole week,
so gaps never leave holes. Series are keyed by VM UUID, not host, so a migration keeps its
history. Times are UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HOUR = 3600.0
WEEK_HOURS = 168
EPOCH_MONDAY = 4 * 24 * HOUR  # 1970-01-01 was a Thursday; hour 0 of the week is Monday 00:00


class BaselineState(enum.StrEnum):
    learning = "learning"
    ready = "ready"


@dataclass(frozen=True)
class BaselineConfig:
    learn_days: float = 7.0
    min_hour_share: float = 0.8  # share of the week's hours that must have samples
    weeks: int = 4  # history kept in the profile
    low_q: float = 0.05
    high_q: float = 0.95


DEFAULT_CONFIG = BaselineConfig()


@dataclass(frozen=True)
class Band:
    median: float
    low: float
    high: float


@dataclass(frozen=True)
class Baseline:
    state: BaselineState
    history_days: float
    hours_seen: int  # of the 168 hours of the week
    bands: tuple[Band, ...]  # 168 when ready, empty while learning

    def band_at(self, t: float) -> Band | None:
        """The band for the hour of the week of ``t`` (None while learning)."""
        return self.bands[hour_of_week(t)] if self.bands else None


def hour_of_week(t: float) -> int:
    return int(((t - EPOCH_MONDAY) // HOUR) % WEEK_HOURS)


def learn(
    times: Sequence[float], values: Sequence[float], config: BaselineConfig = DEFAULT_CONFIG
) -> Baseline:
    """The baseline of a series from its samples (NaN values are ignored)."""
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(v) & np.isfinite(t)
    t, v = t[keep], v[keep]
    if not len(t):
        return Baseline(BaselineState.learning, 0.0, 0, ())
    recent = t >= t.max() - config.weeks * 7 * 24 * HOUR
    t, v = t[recent], v[recent]
    slots = ((t - EPOCH_MONDAY) // HOUR % WEEK_HOURS).astype(np.int64)
    hours_seen = len(np.unique(slots))
    days = float(t.max() - t.min()) / (24 * HOUR)
    if days < config.learn_days or hours_seen < config.min_hour_share * WEEK_HOURS:
        return Baseline(BaselineState.learning, days, hours_seen, ())
    whole = _band(v, config)
    bands = tuple(
        _band(v[slots == h], config) if (slots == h).any() else whole for h in range(WEEK_HOURS)
    )
    return Baseline(BaselineState.ready, days, hours_seen, bands)


def _band(values: np.ndarray, config: BaselineConfig) -> Band:
    low, median, high = np.quantile(values, [config.low_q, 0.5, config.high_q])
    return Band(float(median), float(low), float(high))
