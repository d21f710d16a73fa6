"""Metrics storage: one interface (MetricsStore), a DuckDB file and a VictoriaMetrics server."""

from __future__ import annotations

import os
from pathlib import Path
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
    "default_metrics_url",
    "open_store",
]


def default_metrics_url() -> str:
    """$CORRAL_METRICS_URL, else a DuckDB file under $CORRAL_HOME (default ~/.corral)."""
    url = os.environ.get("CORRAL_METRICS_URL")
    if url:
        return url
    home = Path(os.environ.get("CORRAL_HOME") or Path.home() / ".corral")
    return f"duckdb://{home / 'metrics.duckdb'}"


def open_store(url: str | None = None, retention: RetentionPolicy | None = None) -> MetricsStore:
    """Open the store named by ``url``: ``duckdb:///abs/path``, ``duckdb://:memory:`` or
    ``victoriametrics://host:port`` (``victoriametrics+https://`` for TLS)."""
    url = url or default_metrics_url()
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
