"""Time to exhaustion: when the forecast (plus its usual upside) reaches capacity.

The forecast is the seasonal fit plus the 95th percentile of its residuals, so
a daily peak that already comes close to capacity counts. It is evaluated
hourly from the last sample up to the horizon; the first hour at or above
capacity is the exhaustion time. Cluster capacity already has the N+K reserve
taken off by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from corral.engines.planning.forecast.seasonal import DAY, fit
from corral.engines.planning.state import FloatArray

HOUR = 3600.0


@dataclass(frozen=True)
class Exhaustion:
    scope: str
    resource: str
    capacity: float
    current: float
    slope_per_day: float
    exhausted_at: datetime | None
    days_to_exhaustion: float | None
    method: str
    r2: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "resource": self.resource,
            "capacity": round(self.capacity, 1),
            "current": round(self.current, 1),
            "slope_per_day": round(self.slope_per_day, 3),
            "exhausted_at": self.exhausted_at.isoformat() if self.exhausted_at else None,
            "days_to_exhaustion": None
            if self.days_to_exhaustion is None
            else round(self.days_to_exhaustion, 1),
            "method": self.method,
            "r2": round(self.r2, 3),
        }


def time_to_exhaustion(
    scope: str,
    resource: str,
    times: FloatArray,
    values: FloatArray,
    capacity: float,
    horizon_days: float = 365.0,
) -> Exhaustion:
    """Fit the history and find the first hour the forecast reaches ``capacity``."""
    model = fit(times, values)
    last = float(times.max())
    grid = last + np.arange(0.0, horizon_days * DAY + HOUR, HOUR)
    upper = model.predict(grid) + max(model.residual_q95, 0.0)
    hit = np.flatnonzero(upper >= capacity)
    at = float(grid[hit[0]]) if hit.size else None
    current = float(model.predict(np.array([last]))[0])
    return Exhaustion(
        scope=scope,
        resource=resource,
        capacity=capacity,
        current=current,
        slope_per_day=model.slope_per_day,
        exhausted_at=None if at is None else datetime.fromtimestamp(at, tz=UTC),
        days_to_exhaustion=None if at is None else (at - last) / DAY,
        method=model.method,
        r2=model.r2,
    )
