"""MetricsStore on a VictoriaMetrics server: written through /api/v1/import, read with PromQL.

Series are ``corral_<metric>{kind, id}``: no host label, so a VM's series stays
one series across migrations. Where each entity was is written beside it as
``corralmeta_placement{kind, id, host} 1`` at the same timestamps. Rollups are
materialised as ``corralmeta_rollup{metric, kind, id, res, stat}``: raw
series are streamed once through /api/v1/export, summarised in numpy and
imported back, with the watermark per level kept as
``corralmeta_watermark{res}``. Retention of every level is the server's own
``-retentionPeriod``: VictoriaMetrics cannot delete a time range, so
``apply_retention`` drops nothing.

PromQL windows are left-open, ``(t - w, t]``; evaluating at ``b + w - 1 ms``
gives exactly Corral's ``[b, b + w)`` on whole-second timestamps.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import httpx
import numpy as np

from corral.errors import StoreError
from corral.metrics.model import (
    EntityKind,
    FloatArray,
    IntArray,
    Latest,
    Point,
    Ranked,
    RollupRow,
    SampleBatch,
    Stat,
)
from corral.metrics.store.base import ROLLUP_RESOLUTIONS, RetentionPolicy, align, check_range
from corral.metrics.store.rollup_math import BucketStats, bucket_stats

_FN = {
    Stat.avg: "avg_over_time({sel}[{w}s])",
    Stat.min: "min_over_time({sel}[{w}s])",
    Stat.max: "max_over_time({sel}[{w}s])",
    Stat.p95: "quantile_over_time(0.95, {sel}[{w}s])",
}
_RAW_SELECTOR = '{__name__=~"corral_.+"}'
_EPS = 0.001  # evaluate at the bucket's last millisecond


def _q(value: str) -> str:
    return json.dumps(value)


def _sel(kind: EntityKind, metric: str, entity: str | None = None) -> str:
    ent = f",id={_q(entity)}" if entity is not None else ""
    return f"corral_{metric}{{kind={_q(kind.value)}{ent}}}"


def _line(
    labels: dict[str, str], ts_s: Sequence[int] | IntArray, values: Sequence[float] | FloatArray
) -> str:
    """One /api/v1/import JSON line (timestamps in ms); numbers go through the C JSON encoder."""
    ts = json.dumps((np.asarray(ts_s, dtype=np.int64) * 1000).tolist())
    vals = json.dumps(np.asarray(values, dtype=np.float64).tolist())
    return f'{{"metric":{json.dumps(labels)},"values":{vals},"timestamps":{ts}}}'


class VictoriaMetricsStore:
    """MetricsStore speaking HTTP to one VictoriaMetrics single-node server."""

    deletes_raw = False

    def __init__(
        self, url: str, retention: RetentionPolicy | None = None, timeout_s: float = 60.0
    ) -> None:
        self.url = url.rstrip("/")
        self.retention = retention or RetentionPolicy()
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)

    # -- plumbing ---------------------------------------------------------------
    def _post_lines(self, lines: Iterable[str]) -> None:
        body = "\n".join(lines).encode()
        if not body:
            return
        try:
            resp = self._http.post("/api/v1/import", content=body)
        except httpx.HTTPError as exc:
            raise StoreError(f"VictoriaMetrics at {self.url} is unreachable: {exc}") from None
        if resp.status_code >= 300:
            raise StoreError(f"VictoriaMetrics refused the import: {resp.text.strip()[:200]}")

    def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        try:
            resp = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"VictoriaMetrics at {self.url} is unreachable: {exc}") from None
        if resp.status_code >= 300:
            raise StoreError(f"VictoriaMetrics query failed: {resp.text.strip()[:200]}")
        return resp

    def _query(self, query: str, at: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}", "nocache": "1"})
        return list(data.json()["data"]["result"])

    def _query_range(self, query: str, start: float, end: float, step: int) -> list[dict[str, Any]]:
        params = {
            "query": query,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step}s",
            "nocache": "1",
        }
        return list(self._get("/api/v1/query_range", params).json()["data"]["result"])

    def _export(self, match: str, start: int, end: int) -> Iterator[dict[str, Any]]:
        params = {"match[]": match, "start": str(start), "end": f"{end - _EPS:.3f}"}
        for line in self._get("/api/v1/export", params).text.splitlines():
            if line.strip():
                yield json.loads(line)

    def flush(self) -> None:
        """Make everything written so far visible to queries."""
        self._get("/internal/force_flush", {})

    # -- write ------------------------------------------------------------------
    def write(self, batch: SampleBatch) -> int:
        n = len(batch)
        if n == 0:
            return 0
        self._post_lines(self._sample_lines(batch))
        self._post_lines(self._placement_lines(batch))
        self._mark_late(batch)
        return n

    def _mark_late(self, batch: SampleBatch) -> None:
        """Series with samples behind a rollup watermark get ``corralmeta_dirty``: rolled again."""
        marks = [w for w in (self._watermark(r) for r in ROLLUP_RESOLUTIONS) if w is not None]
        if not marks:
            return
        late = np.unique(batch.series_idx[batch.ts < max(marks)])
        stamp = time.time_ns() // 1_000_000
        lines = []
        for i in late.tolist():
            key = batch.series[i]
            labels = {
                "__name__": "corralmeta_dirty",
                "metric": key.metric,
                "kind": key.kind.value,
                "id": key.entity,
            }
            lines.append(f'{{"metric":{json.dumps(labels)},"values":[1],"timestamps":[{stamp}]}}')
        self._post_lines(lines)

    def _sample_lines(self, batch: SampleBatch) -> Iterator[str]:
        order = np.argsort(batch.series_idx, kind="stable")
        sidx = batch.series_idx[order]
        cuts = np.flatnonzero(np.diff(sidx)) + 1
        for chunk in np.split(order, cuts):
            key = batch.series[int(batch.series_idx[chunk[0]])]
            labels = {"__name__": f"corral_{key.metric}", "kind": key.kind.value, "id": key.entity}
            yield _line(labels, batch.ts[chunk], batch.values[chunk])

    def _placement_lines(self, batch: SampleBatch) -> Iterator[str]:
        """``corralmeta_placement{kind, id, host} 1`` at every distinct time of each entity."""
        ents = list(dict.fromkeys((k.kind, k.entity) for k in batch.series))
        ent_of = {e: i for i, e in enumerate(ents)}
        ent = np.array([ent_of[(k.kind, k.entity)] for k in batch.series], dtype=np.int64)
        n_hosts = max(1, len(batch.hosts))
        group = ent[batch.series_idx] * n_hosts + batch.host_idx
        keys = np.unique((group << 34) | batch.ts)  # ts < 2**34 s (the year 2514)
        groups, ts = keys >> 34, keys & ((1 << 34) - 1)
        cuts = np.flatnonzero(np.diff(groups)) + 1
        for g_ts, g in zip(np.split(ts, cuts), np.split(groups, cuts), strict=True):
            e, h = divmod(int(g[0]), n_hosts)
            kind, entity = ents[e]
            labels = {
                "__name__": "corralmeta_placement",
                "kind": kind.value,
                "id": entity,
                "host": batch.hosts[h],
            }
            yield _line(labels, g_ts, np.ones(len(g_ts)))

    # -- queries ----------------------------------------------------------------
    def raw(
        self, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[tuple[int, str, float]]:
        check_range(start, end)
        where = self._placements(kind, entity, start, end)
        out: list[tuple[int, str, float]] = []
        for row in self._export(_sel(kind, metric, entity), start, end):
            for t_ms, v in zip(row["timestamps"], row["values"], strict=True):
                t = int(t_ms) // 1000
                out.append((t, where.get(t, ""), float(v)))
        return sorted(out)

    def _placements(self, kind: EntityKind, entity: str, start: int, end: int) -> dict[int, str]:
        match = f"corralmeta_placement{{kind={_q(kind.value)},id={_q(entity)}}}"
        where: dict[int, str] = {}
        for row in self._export(match, start, end):
            for t_ms in row["timestamps"]:
                where[int(t_ms) // 1000] = row["metric"]["host"]
        return where

    def series(
        self,
        kind: EntityKind,
        entity: str,
        metric: str,
        start: int,
        end: int,
        step: int,
        stat: Stat = Stat.avg,
    ) -> list[Point]:
        check_range(start, end, step)
        first = align(start, step)
        query = _FN[stat].format(sel=_sel(kind, metric, entity), w=step)
        if first < start:  # a partial first bucket: PromQL cannot clip it, so do it from raw data
            return self._series_from_raw(kind, entity, metric, start, end, step, stat)
        result = self._query_range(query, first + step - _EPS, end - _EPS, step)
        return [
            Point(round(float(t) + _EPS) - step, float(v))
            for row in result
            for t, v in row["values"]
        ]

    def _series_from_raw(
        self,
        kind: EntityKind,
        entity: str,
        metric: str,
        start: int,
        end: int,
        step: int,
        stat: Stat,
    ) -> list[Point]:
        rows = self.raw(kind, entity, metric, start, end)
        buckets: dict[int, list[float]] = defaultdict(list)
        for t, _, v in rows:
            buckets[align(t, step)].append(v)
        return [Point(b, _reduce(vs, stat)) for b, vs in sorted(buckets.items())]

    def per_entity(
        self, kind: EntityKind, metric: str, start: int, end: int, stat: Stat = Stat.p95
    ) -> dict[str, float]:
        check_range(start, end)
        query = _FN[stat].format(sel=_sel(kind, metric), w=end - start)
        return {r["metric"]["id"]: float(r["value"][1]) for r in self._query(query, end - _EPS)}

    def top(
        self, kind: EntityKind, metric: str, start: int, end: int, n: int, stat: Stat = Stat.avg
    ) -> list[Ranked]:
        check_range(start, end)
        inner = _FN[stat].format(sel=_sel(kind, metric), w=end - start)
        rows = self._query(f"topk({max(n, 0)}, {inner})", end - _EPS)
        ranked = [Ranked(r["metric"]["id"], float(r["value"][1])) for r in rows]
        return sorted(ranked, key=lambda x: (-x.value, x.entity))[:n]

    def latest(self, kinds: Sequence[EntityKind], since: int) -> list[Latest]:
        if not kinds:
            return []
        now = self._server_now()
        window = max(1, int(now - since) + 1)
        kre = "|".join(k.value for k in kinds)
        sel = f'{{__name__=~"corral_.+",kind=~"{kre}"}}'
        values = self._query(f"last_over_time({sel}[{window}s]) keep_metric_names", now)
        stamps = self._query(f"tlast_over_time({sel}[{window}s]) keep_metric_names", now)
        hosts = self._latest_hosts(kre, window, now)
        when = {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in stamps}
        out = []
        for r in values:
            m = r["metric"]
            t = int(when.get(json.dumps(m, sort_keys=True), float(r["value"][0])))
            if t < since:
                continue
            kind, ent = EntityKind(m["kind"]), m["id"]
            metric = m["__name__"].removeprefix("corral_")
            out.append(
                Latest(kind, ent, hosts.get((kind.value, ent), ""), metric, t, float(r["value"][1]))
            )
        return sorted(out, key=lambda x: (x.kind.value, x.metric, x.entity))

    def _latest_hosts(self, kre: str, window: int, now: float) -> dict[tuple[str, str], str]:
        sel = f'corralmeta_placement{{kind=~"{kre}"}}'
        best: dict[tuple[str, str], tuple[float, str]] = {}
        for r in self._query(f"tlast_over_time({sel}[{window}s])", now):
            m, t = r["metric"], float(r["value"][1])
            key = (m["kind"], m["id"])
            if key not in best or t > best[key][0]:
                best[key] = (t, m["host"])
        return {k: h for k, (_, h) in best.items()}

    def _server_now(self) -> float:
        return time.time()

    # -- rollups ------------------------------------------------------------------
    def rollup_rows(
        self, resolution: int, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[RollupRow]:
        match = (
            f"corralmeta_rollup{{metric={_q(metric)},kind={_q(kind.value)},"
            f'id={_q(entity)},res="{resolution}"}}'
        )
        cols: dict[str, dict[int, float]] = {}
        for row in self._export(match, start, end):
            cols[row["metric"]["stat"]] = {
                int(t) // 1000: float(v)
                for t, v in zip(row["timestamps"], row["values"], strict=True)
            }
        if "n" not in cols:
            return []
        return [
            RollupRow(t, int(n), cols["min"][t], cols["avg"][t], cols["max"][t], cols["p95"][t])
            for t, n in sorted(cols["n"].items())
        ]

    def _watermark(self, r: int) -> int | None:
        rows = self._query(
            f'last_over_time(corralmeta_watermark{{res="{r}"}}[3650d])', self._server_now()
        )
        return int(float(rows[0]["value"][1])) if rows else None

    def _first_ts(self) -> int | None:
        rows = self._query(f"min(tfirst_over_time({_RAW_SELECTOR}[3650d]))", self._server_now())
        return int(float(rows[0]["value"][1])) if rows else None

    def rollup(self, now: int) -> int:
        made = self._reroll_dirty()
        spans: dict[int, tuple[int, int]] = {}
        for r in ROLLUP_RESOLUTIONS:
            wm = self._watermark(r)
            frm = wm if wm is not None else self._first_ts()
            if frm is not None and align(frm, r) < align(now, r):
                spans[r] = (align(frm, r), align(now, r))
        if spans:
            made += self._rollup_range(spans)
            self.flush()
            for r, (_, upto) in spans.items():
                self._set_watermark(r, upto)
        self.flush()
        return made

    def _set_watermark(self, r: int, upto: int) -> None:
        labels = {"__name__": "corralmeta_watermark", "res": str(r)}
        stamp = time.time_ns() // 1_000_000
        self._post_lines(
            [f'{{"metric":{json.dumps(labels)},"values":[{upto}],"timestamps":[{stamp}]}}']
        )

    def _reroll_dirty(self) -> int:
        """Drop and redo the rollups of series that got samples behind a watermark."""
        dirty = self._query("last_over_time(corralmeta_dirty[3650d])", self._server_now())
        made = 0
        for row in dirty:
            m = row["metric"]
            kind, ent, metric = EntityKind(m["kind"]), m["id"], m["metric"]
            ids = f"metric={_q(metric)},kind={_q(kind.value)},id={_q(ent)}"
            self._delete(f"corralmeta_rollup{{{ids}}}")
            self._delete(f"corralmeta_dirty{{{ids}}}")
            first = self._query(
                f"tfirst_over_time({_sel(kind, metric, ent)}[3650d])", self._server_now()
            )
            for r in ROLLUP_RESOLUTIONS:
                wm = self._watermark(r)
                if first and wm is not None:
                    lo = align(int(float(first[0]["value"][1])), r)
                    made += self._rollup_range({r: (lo, wm)}, _sel(kind, metric, ent))
        return made

    def _delete(self, match: str) -> None:
        try:
            resp = self._http.post("/api/v1/admin/tsdb/delete_series", params={"match[]": match})
        except httpx.HTTPError as exc:
            raise StoreError(f"VictoriaMetrics at {self.url} is unreachable: {exc}") from None
        if resp.status_code >= 300:
            raise StoreError(f"VictoriaMetrics refused to delete {match}: {resp.text[:200]}")

    def _rollup_range(self, spans: dict[int, tuple[int, int]], sel: str = _RAW_SELECTOR) -> int:
        """Stream raw series once through /api/v1/export; summarise each level's span in numpy."""
        made = 0
        lines: list[str] = []
        frm = min(lo for lo, _ in spans.values())
        upto = max(hi for _, hi in spans.values())
        params = {"match[]": sel, "start": str(frm), "end": f"{upto - _EPS:.3f}"}
        try:
            with self._http.stream("GET", "/api/v1/export", params=params) as resp:
                if resp.status_code >= 300:
                    raise StoreError(f"VictoriaMetrics export failed: {resp.read()[:200]!r}")
                for text in resp.iter_lines():
                    if text.strip():
                        made += self._rollup_series(json.loads(text), spans, lines)
                    if len(lines) >= 2000:
                        self._post_lines(lines)
                        lines.clear()
        except httpx.HTTPError as exc:
            raise StoreError(f"VictoriaMetrics at {self.url} is unreachable: {exc}") from None
        self._post_lines(lines)
        return made

    @staticmethod
    def _rollup_series(
        row: dict[str, Any], spans: dict[int, tuple[int, int]], out: list[str]
    ) -> int:
        m = row["metric"]
        ts = np.asarray(row["timestamps"], dtype=np.int64) // 1000
        values = np.asarray(row["values"], dtype=np.float64)
        made = 0
        for r, (lo, hi) in spans.items():
            keep = (ts >= lo) & (ts < hi)
            if keep.any():
                made += _rollup_lines(m, r, bucket_stats(ts[keep], values[keep], r), out)
        return made

    def apply_retention(self, now: int) -> int:
        """Nothing to drop here: the server's -retentionPeriod ages out every level."""
        return 0

    def close(self) -> None:
        self._http.close()


def _rollup_lines(m: dict[str, str], r: int, st: BucketStats, out: list[str]) -> int:
    """Append the five import lines (n, min, avg, max, p95) of one series' rollup at ``r``."""
    base = {
        "__name__": "corralmeta_rollup",
        "metric": m["__name__"].removeprefix("corral_"),
        "kind": m["kind"],
        "id": m["id"],
        "res": str(r),
    }
    stats = (("n", st.count), ("min", st.min), ("avg", st.avg), ("max", st.max), ("p95", st.p95))
    for stat, vals in stats:
        out.append(_line({**base, "stat": stat}, st.ts, vals.astype(np.float64)))
    return len(st.ts)


def _reduce(values: list[float], stat: Stat) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if stat is Stat.avg:
        return float(arr.mean())
    if stat is Stat.min:
        return float(arr.min())
    if stat is Stat.max:
        return float(arr.max())
    return float(np.quantile(arr, 0.95))
