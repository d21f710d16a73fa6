"""The metrics store as the interfaces see it: its narrow interface, opened one way.

The issue that made the service layer found the metrics store opened three different ways
(a CLI flag, an API helper the CLI imported, ``open_store()``). Interfaces now reach it here:
which adapter answers a URL is the services' business, not theirs.
"""

from __future__ import annotations

from corral.metrics.store.base import MetricsStore

__all__ = ["MetricsStore", "open_metrics_store"]


def open_metrics_store(url: str) -> MetricsStore:
    """The store a ``duckdb://`` or ``victoriametrics[+https]://`` URL names, opened."""
    from corral.metrics.store import open_store  # DuckDB and httpx only for those who use it

    return open_store(url)
