"""A stored series' learned baseline and its forecast, as typed answers for the CLI and REST.

Why a service: ``corral metrics baseline|forecast VM METRIC`` and
``/api/v1/metrics/baseline|forecast`` must say the same thing, and the alert rules
(``baseline``, ``runway``) use the same engines (corral.engines.baseline,
corral.engines.forecast) on the same stored buckets, so what a person reads here is what
the alerts judge by. Series are read from either metrics store through one interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from corral.domain.metrics import EntityKind
from corral.engines.baseline import DEFAULT_CONFIG as BASELINE_CONFIG
from corral.engines.baseline import BaselineState, learn
from corral.engines.baseline.hour_of_week import WEEK_HOURS, hour_of_week
from corral.metrics.catalog import metric_info
from corral.metrics.store.base import MetricsStore
from corral.services import monitoring
from corral.services.monitoring import ForecastRow

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
BASELINE_STEP_S = 300  # the buckets the baseline alert rule learns from


@dataclass(frozen=True)
class HourBand:
    """The usual range of one hour of the week (UTC): ``low``..``high`` around ``median``."""

    hour_of_week: int  # 0 = Monday 00:00 UTC
    day: str
    hour: int
    median: float
    low: float
    high: float


@dataclass(frozen=True)
class BaselineView:
    kind: EntityKind
    entity: str
    metric: str
    state: BaselineState
    history_days: float
    hours_seen: int
    #: what "ready" takes: this many days of history with samples in this many hours
    needs_days: float
    needs_hours: int
    at: int
    latest: float | None  # the newest stored value, None without one
    band_now: HourBand | None  # the band of the hour ``at`` falls in (None while learning)
    outside: bool | None  # whether ``latest`` is outside ``band_now``
    hours: tuple[HourBand, ...]  # the 168 hours of the week when ready


@dataclass(frozen=True)
class ForecastView:
    kind: EntityKind
    entity: str
    metric: str
    history_from: int
    start: int
    step_s: int
    horizon_s: int
    steps: tuple[ForecastRow, ...]


def _read(
    store: MetricsStore, kind: EntityKind, entity: str, metric: str, lo: int, hi: int, step: int
) -> monitoring.Series:
    metric_info(metric)  # an unknown metric is one clear error, not an empty series
    points = store.series(kind, entity, metric, lo - lo % step, hi, step)
    return monitoring.from_points([(p.ts, p.value) for p in points])


def baseline(
    store: MetricsStore,
    kind: EntityKind,
    entity: str,
    metric: str,
    at: int,
    history_s: int = 28 * 86400,
) -> BaselineView:
    """The hour-of-week band learned from the ``history_s`` before ``at``, and where the
    newest value stands against the band of its hour."""
    series = _read(store, kind, entity, metric, at - history_s, at, BASELINE_STEP_S)
    learned = learn(series.times, series.values)
    hours = tuple(_hour(h, b.median, b.low, b.high) for h, b in enumerate(learned.bands))
    latest = next((v for v in reversed(series.values) if math.isfinite(v)), None)
    band = learned.band_at(at)
    now = None if band is None else _hour(hour_of_week(at), band.median, band.low, band.high)
    outside = None if now is None or latest is None else not now.low <= latest <= now.high
    return BaselineView(
        kind,
        entity,
        metric,
        learned.state,
        round(learned.history_days, 3),
        learned.hours_seen,
        BASELINE_CONFIG.learn_days,
        math.ceil(BASELINE_CONFIG.min_hour_share * WEEK_HOURS),
        at,
        latest,
        now,
        outside,
        hours,
    )


def forecast(
    store: MetricsStore,
    kind: EntityKind,
    entity: str,
    metric: str,
    at: int,
    horizon_s: int,
    step_s: int,
    history_s: int = 30 * 86400,
) -> ForecastView:
    """Each step's mean from the first whole step after the newest sample over
    ``horizon_s``, with an 80 % band, from the ``history_s`` before ``at``."""
    series = _read(store, kind, entity, metric, at - history_s, at, step_s)
    start = monitoring.default_start(_observed(series), step_s)
    steps = monitoring.forecast(series, start, horizon_s, step_s)
    return ForecastView(
        kind, entity, metric, at - history_s, start, step_s, horizon_s, tuple(steps)
    )


def _observed(series: monitoring.Series) -> monitoring.Series:
    """The series up to its last real sample (a store answers empty buckets up to ``at``)."""
    last = max((i for i, v in enumerate(series.values) if math.isfinite(v)), default=None)
    if last is None:
        return series
    return monitoring.Series(
        series.labels[: last + 1], series.times[: last + 1], series.values[: last + 1]
    )


def _hour(h: int, median: float, low: float, high: float) -> HourBand:
    return HourBand(h, DAYS[h // 24], h % 24, round(median, 4), round(low, 4), round(high, 4))


__all__ = ["BaselineView", "ForecastRow", "ForecastView", "HourBand", "baseline", "forecast"]
