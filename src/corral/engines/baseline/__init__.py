"""Learned baselines of one series: an hour-of-week profile with a band."""

from corral.engines.baseline.hour_of_week import (
    DEFAULT_CONFIG,
    Band,
    Baseline,
    BaselineConfig,
    BaselineState,
    learn,
)

__all__ = ["DEFAULT_CONFIG", "Band", "Baseline", "BaselineConfig", "BaselineState", "learn"]
