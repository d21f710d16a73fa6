"""Forecasts of one series with an interval (the step's mean, an 80 % band)."""

from corral.engines.forecast.profile import (
    DEFAULT_CONFIG,
    ForecastConfig,
    ForecastStep,
    bucket_means,
    forecast,
)

__all__ = ["DEFAULT_CONFIG", "ForecastConfig", "ForecastStep", "bucket_means", "forecast"]
