"""Metrics storage: one interface (MetricsStore), a DuckDB file and a VictoriaMetrics server."""

from __future__ import annotations

from urllib.parse import urlsplit

from corral.errors import ConfigError
from corral.metrics.store.base import ROLLUP_RESOLUTIONS, MetricsStore, RetentionPolicy
from corral.metrics.store.duckdb_store import DuckDBStore
from corral.metrics.store.victoria import VictoriaMetricsStore

__all__ = [
    "ROLLUP_RESOLUTIONS",
    "DuckDBStore",
    "MetricsStore",
    "RetentionPolicy",
    "VictoriaMetricsStore",
    "open_store",
]


def open_store(url: str, retention: RetentionPolicy | None = None) -> MetricsStore:
    """Open the store named by ``url`` (the ``metrics_url`` setting): ``duckdb:///abs/path``,
    ``duckdb://:memory:`` or ``victoriametrics://host:port`` (``victoriametrics+https://``)."""
    parts = urlsplit(url)
    if parts.scheme == "duckdb":
        path = (parts.netloc + parts.path) or ":memory:"
        return DuckDBStore(path, retention)
    if parts.scheme in ("victoriametrics", "victoriametrics+http", "victoriametrics+https"):
        if not parts.netloc:
            raise ConfigError(f"{url!r} names no server; use victoriametrics://host:8428.")
        proto = "https" if parts.scheme.endswith("https") else "http"
        return VictoriaMetricsStore(f"{proto}://{parts.netloc}{parts.path}", retention)
    raise ConfigError(
        f"unsupported metrics store URL {url!r}; use duckdb:///path/metrics.duckdb or "
        "victoriametrics://host:8428 (CORRAL_METRICS_URL)."
    )
