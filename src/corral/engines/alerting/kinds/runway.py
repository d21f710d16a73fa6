"""Forecast runway: a host's metric (memory or CPU use, in %) reaches ``limit`` within ``days``.

The forecast is corral.engines.forecast's hourly profile (the next days' usual shape) plus the
history's linear trend of daily means carried forward: the profile alone repeats last week's
level and would never see a host filling up. The profile is a median over its window, so its
level is the one of the window's middle; the trend is carried from there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from corral.engines.alerting.kinds.base import EntityKind, Needs, Params, Rule, seconds
from corral.engines.alerting.model import Condition, Series, Snapshot
from corral.engines.forecast import DEFAULT_CONFIG, bucket_means, forecast

DAY = 86400.0
HOUR = 3600.0


class RunwayParams(Params):
    metric: str
    entity: EntityKind = "host"
    limit: float = 100.0
    days: float = 14.0
    history: str = "28d"


def trend_per_second(series: Series, now: float) -> float:
    """Slope of the daily means over the history (0 with under three days of them)."""
    days = bucket_means(series.times, series.values, now, DAY)
    x = np.arange(len(days), dtype=np.float64)
    keep = np.isfinite(days)
    if keep.sum() < 3:
        return 0.0
    slope = float(np.polyfit(x[keep], days[keep], 1)[0])
    return slope / DAY


def reaches(series: Series, now: float, limit: float, days: float) -> float | None:
    """The first hour (epoch seconds) whose forecast reaches ``limit``, or None."""
    start = (now // HOUR + 1) * HOUR
    steps = forecast(series.times, series.values, start, days * DAY, HOUR)
    slope = trend_per_second(series, now)
    middle = now - DEFAULT_CONFIG.window / 2
    for step in steps:
        if step.forecast + slope * (step.time - middle) >= limit:
            return step.time
    return None


class Runway(Rule):
    kind = "runway"
    params_model = RunwayParams
    params: RunwayParams

    def needs(self) -> Needs:
        key = (self.params.entity, self.params.metric)
        return Needs(history={key: seconds(self.params.history)})

    def evaluate(self, snapshot: Snapshot) -> list[Condition]:
        p = self.params
        found = []
        for entity, series in snapshot.history.get((p.entity, p.metric), {}).items():
            if not len(series.times):
                continue
            when = reaches(series, snapshot.now, p.limit, p.days)
            if when is not None:
                day = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:00 UTC")
                left = (when - snapshot.now) / DAY
                summary = (
                    f"{p.metric} of {entity} reaches {p.limit:g} around {day} ({left:.1f} days)"
                )
                found.append(self.condition(snapshot, p.entity, entity, p.metric, left, summary))
        return found
