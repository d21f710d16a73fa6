"""The scale tests reuse the metrics tests' real store backends (DuckDB file, VictoriaMetrics)."""

from tests.metrics.conftest import store, victoria_url

__all__ = ["store", "victoria_url"]
