"""Metrics over HTTP: series, fleet rankings, latest values, and Prometheus ``/metrics``.

The store comes from ``get_metrics_store``: the app's, opened from the ``metrics_url`` setting
(``duckdb:///path`` or ``victoriametrics://host:8428``; default a DuckDB file in Corral's home).
"""

from __future__ import annotations

import io
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from corral.api.deps import require
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.problems import error_responses
from corral.domain import csvsafe
from corral.domain.access import Permission as Perm
from corral.metrics import exposition
from corral.metrics.catalog import METRICS, metric_info
from corral.metrics.model import EntityKind, Stat
from corral.metrics.timeparse import iso, parse_duration, parse_time
from corral.services.stores import MetricsStore, open_metrics_store

#: Every metrics route reads the fleet's shape: one permission for the whole router.
router = APIRouter(tags=["metrics"], dependencies=[require(Perm.fleet_read)])

#: How far back /metrics looks for a series' newest value.
EXPOSITION_WINDOW_S = 900


def get_metrics_store(request: Request) -> MetricsStore:
    """The app's metrics store, opened once from the settings."""
    store: MetricsStore | None = getattr(request.app.state, "metrics", None)
    if store is None:
        store = open_metrics_store(request.app.state.settings.metrics_url)
        request.app.state.metrics = store
    return store


StoreDep = Annotated[MetricsStore, Depends(get_metrics_store)]


class MetricInfoOut(BaseModel):
    name: str
    kind: EntityKind
    unit: str
    help: str


class PointOut(BaseModel):
    ts: int
    time: str
    value: float


class SeriesOut(BaseModel):
    kind: EntityKind
    id: str
    metric: str
    stat: Stat
    start: int
    end: int
    step: int
    points: list[PointOut]


class RankedOut(BaseModel):
    id: str
    value: float


class LatestOut(BaseModel):
    kind: EntityKind
    id: str
    host: str
    metric: str
    ts: int
    value: float


def _range(start: str, end: str) -> tuple[int, int]:
    now = time.time()
    return parse_time(start, now), parse_time(end, now)


@router.get(
    "/api/v1/metrics/catalog", response_model=Page[MetricInfoOut], responses=error_responses(422)
)
def catalog(limit: Limit = 100, cursor: Cursor = None) -> Page[MetricInfoOut]:
    """Every metric Corral stores, with its unit."""
    infos = [MetricInfoOut(name=m.name, kind=m.kind, unit=m.unit, help=m.help) for m in METRICS]
    return paginate(sorted(infos, key=lambda i: i.name), lambda i: (i.name,), limit, cursor)


@router.get(
    "/api/v1/metrics/series",
    response_model=SeriesOut,
    responses={
        **error_responses(404, 422, 502),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
)
def series(
    store: StoreDep,
    id: Annotated[str, Query(description="VM UUID or host name")],
    metric: str,
    kind: EntityKind = EntityKind.vm,
    start: str = "-24h",
    end: str = "now",
    step: str = "5m",
    stat: Stat = Stat.avg,
    format: Literal["json", "csv"] = "json",
) -> SeriesOut | Response:
    """One VM's or host's metric over a range, in buckets of ``step`` (e.g. 5m, 1h)."""
    metric_info(metric)
    lo, hi = _range(start, end)
    step_s = parse_duration(step)
    points = store.series(kind, id, metric, lo, hi, step_s, stat)
    if format == "csv":
        buf = io.StringIO()
        w = csvsafe.writer(buf)
        w.writerow(["time", "ts", "value"])
        w.writerows([iso(p.ts), p.ts, p.value] for p in points)
        return Response(buf.getvalue(), media_type="text/csv")
    return SeriesOut(
        kind=kind,
        id=id,
        metric=metric,
        stat=stat,
        start=lo,
        end=hi,
        step=step_s,
        points=[PointOut(ts=p.ts, time=iso(p.ts), value=p.value) for p in points],
    )


@router.get(
    "/api/v1/metrics/top", response_model=list[RankedOut], responses=error_responses(404, 422, 502)
)
def top(
    store: StoreDep,
    metric: str,
    kind: EntityKind = EntityKind.vm,
    start: str = "-24h",
    end: str = "now",
    n: Annotated[int, Query(ge=1, le=10000)] = 10,
    stat: Stat = Stat.avg,
) -> list[RankedOut]:
    """The ``n`` VMs (or hosts) with the highest ``stat`` of a metric, e.g. the most CPU wait."""
    metric_info(metric)
    lo, hi = _range(start, end)
    return [RankedOut(id=r.entity, value=r.value) for r in store.top(kind, metric, lo, hi, n, stat)]


@router.get(
    "/api/v1/metrics/latest", response_model=Page[LatestOut], responses=error_responses(422, 502)
)
def latest(
    store: StoreDep,
    kind: EntityKind | None = None,
    since: str = "-15m",
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[LatestOut]:
    """The newest value of every series (of one kind, if given)."""
    kinds = [kind] if kind else list(EntityKind)
    lo = parse_time(since, time.time())
    rows = [
        LatestOut(kind=x.kind, id=x.entity, host=x.host, metric=x.metric, ts=x.ts, value=x.value)
        for x in store.latest(kinds, lo)
    ]
    rows.sort(key=_latest_key)
    return paginate(rows, _latest_key, limit, cursor)


def _latest_key(x: LatestOut) -> tuple[str, str, str]:
    return (x.kind.value, x.id, x.metric)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}}},
)
def prometheus(store: StoreDep) -> PlainTextResponse:
    """Latest per-VM and per-host gauges and collector health, in Prometheus text format."""
    now = time.time()
    text = exposition.render(store.latest(list(EntityKind), int(now) - EXPOSITION_WINDOW_S), now)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
