"""What the REST API's sprawl jobs need besides the sprawl service: the metrics store of the
settings (a job runs in the runner's thread, outside any request), and the types its answers use.

The enums and parameters are re-exported so the interfaces import services only
(tests/test_layering.py).
"""

from __future__ import annotations

from corral.config import Settings
from corral.engines.sprawl import RightSizeMode, RightSizingParams
from corral.engines.sprawl.model import Category
from corral.metrics.store import MetricsStore, open_store

__all__ = [
    "Category",
    "MetricsStore",
    "RightSizeMode",
    "RightSizingParams",
    "settings_metrics_store",
]


def settings_metrics_store(settings: Settings) -> MetricsStore:
    """The metrics store of the ``metrics_url`` setting (DuckDB file or VictoriaMetrics)."""
    return open_store(settings.metrics_url)
