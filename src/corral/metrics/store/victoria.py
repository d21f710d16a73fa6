"""MetricsStore on a VictoriaMetrics server: written through /api/v1/import, read with PromQL.

Series are ``corral_<metric>{kind, id}``: no host label, so a VM's series stays
one series across migrations. Where each entity was is written beside it as
``corralmeta_placement{kind, id, host} 1`` at the same timestamps. Rollups are
materialised as ``corralmeta_rollup{metric, kind, id, res, stat}``: raw
series are streamed once through /api/v1/export, summarised in numpy and
imported back, with the watermark per level kept as
``corralmeta_watermark{res}``. Only the 1 h and 1 day levels are stored: the
5-minute level would copy 5-minute data five times over, so it is summarised
from raw samples when read (raw samples live as long as the rollups here).
Retention of every level is the server's own ``-retentionPeriod``:
VictoriaMetrics cannot delete a time range, so
``apply_retention`` drops nothing.

PromQL windows are left-open, ``(t - w, t]``; evaluating at ``b + w - 1 ms``
gives exactly Corral's ``[b, b + w)`` on whole-second timestamps.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import orjson

from corral.domain.metrics import (
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
from corral.errors import StoreError
from corral.metrics.store.base import (
    ROLLUP_RESOLUTIONS,
    RetentionPolicy,
    SeriesColumns,
    align,
    check_range,
)
from corral.metrics.store.rollup_math import BucketStats, bucket_stats

_FN = {
    Stat.avg: "avg_over_time({sel}[{w}s])",
    Stat.min: "min_over_time({sel}[{w}s])",
    Stat.max: "max_over_time({sel}[{w}s])",
    Stat.p95: "quantile_over_time(0.95, {sel}[{w}s])",
}
#: Rollup levels stored as series; 5 minutes is summarised from raw samples on read.
MATERIALISED: tuple[int, ...] = tuple(r for r in ROLLUP_RESOLUTIONS if r > 300)
_RAW_SELECTOR = '{__name__=~"corral_.+"}'
_EPS = 0.001  # evaluate at the bucket's last millisecond
#: Longest id regex in one query: the server refuses queries over -search.maxQueryLen (16 KiB).
_MAX_IDS_CHARS = 12_000
#: ``latest`` after its first call reads only samples from its last read's time minus this
#: many seconds on: a sample reaching the server later than this behind its own timestamp
#: is missed by a store object that read before it came.
LATEST_MARGIN_S = 300
#: ...and reads the whole window again once this many seconds have passed since it last did,
#: which bounds how long a sample arriving later than the margin can be missed.
LATEST_FULL_EVERY_S = 900
_LATEST_CACHES = 4  # sets of kinds whose answers are kept (alerts, exposition, diagnosis)


def _q(value: str) -> str:
    return json.dumps(value)


def _labels_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A series' label set as a hashable key (the same set in any order gives the same key)."""
    return tuple(sorted(labels.items()))


def _sel(kind: EntityKind, metric: str, entity: str | None = None) -> str:
    ent = f",id={_q(entity)}" if entity is not None else ""
    return f"corral_{metric}{{kind={_q(kind.value)}{ent}}}"


@functools.lru_cache(maxsize=64)
def _ts_json_cached(raw: bytes) -> str:
    return json.dumps((np.frombuffer(raw, dtype=np.int64) * 1000).tolist())


def _ts_json(ts: IntArray) -> str:
    """Timestamps as a JSON list of ms; series of one batch mostly share them, so cache."""
    return _ts_json_cached(np.ascontiguousarray(ts).tobytes())


def _line(
    labels: dict[str, str], ts_s: Sequence[int] | IntArray, values: Sequence[float] | FloatArray
) -> str:
    """One /api/v1/import JSON line (timestamps in ms); numbers go through the C JSON encoder."""
    ts = _ts_json(np.asarray(ts_s, dtype=np.int64))
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
        self._placed: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._latest_caches: OrderedDict[tuple[str, ...], _LatestCache] = OrderedDict()
        self._latest_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------
    def _post_lines(self, lines: Iterable[str] | str) -> None:
        body = (lines if isinstance(lines, str) else "\n".join(lines)).encode()
        if not body:
            return
        try:
            resp = self._http.post("/api/v1/import", content=body)
        except httpx.HTTPError as exc:
            raise StoreError(f"VictoriaMetrics at {self.url} is unreachable: {exc}") from None
        if resp.status_code >= 300:
            raise StoreError(f"VictoriaMetrics refused the import: {resp.text.strip()[:200]}")

    def _get(
        self, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            resp = self._http.get(path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreError(f"VictoriaMetrics at {self.url} is unreachable: {exc}") from None
        if resp.status_code >= 300:
            raise StoreError(f"VictoriaMetrics query failed: {resp.text.strip()[:200]}")
        return resp

    def _query(self, query: str, at: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}", "nocache": "1"})
        return list(orjson.loads(data.content)["data"]["result"])

    def _query_range(self, query: str, start: float, end: float, step: int) -> list[dict[str, Any]]:
        params = {
            "query": query,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step}s",
            "nocache": "1",
        }
        resp = self._get("/api/v1/query_range", params)
        return list(orjson.loads(resp.content)["data"]["result"])

    def _query_range_form(
        self, query: str, start: float, end: float, step: int
    ) -> list[dict[str, Any]]:
        """``_query_range`` as a POSTed form: a chunk's id list does not fit in a URL."""
        form = {
            "query": query,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step}s",
            "nocache": "1",
        }
        try:
            resp = self._http.post("/api/v1/query_range", data=form)
        except httpx.HTTPError as exc:
            raise StoreError(f"VictoriaMetrics at {self.url} is unreachable: {exc}") from None
        if resp.status_code >= 300:
            raise StoreError(f"VictoriaMetrics query failed: {resp.text.strip()[:200]}")
        return list(orjson.loads(resp.content)["data"]["result"])

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
        """Import the samples not stored yet; bodies are posted by a second thread while the
        next is built. Returns how many samples the batch had."""
        n = len(batch)
        if n == 0:
            return 0
        batch = self._only_new(batch.last_per_series_and_time())
        if len(batch) == 0:
            return n
        with ThreadPoolExecutor(max_workers=1) as poster:
            pending = [
                poster.submit(self._post_lines, body) for body in _bodies(self._lines(batch))
            ]
            for fut in pending:
                fut.result()
        self._mark_late(batch)
        return n

    def _only_new(self, batch: SampleBatch) -> SampleBatch:
        """The batch without the (series, time) pairs the server already holds.

        VictoriaMetrics keeps every copy of a sample unless it runs with
        ``-dedup.minScrapeInterval``, and a copy changes counts and percentiles, so
        a re-run or resumed backfill must not import again what is there.
        """
        self._flush_quietly()  # what a killed writer imported becomes searchable
        names = "|".join(sorted({re.escape(k.metric) for k in batch.series}))
        kinds = "|".join(sorted({k.kind.value for k in batch.series}))
        match = f'{{__name__=~"corral_({names})",kind=~"{kinds}"}}'
        lo, hi = int(batch.ts.min()), int(batch.ts.max())
        index = {
            (f"corral_{k.metric}", k.kind.value, k.entity): i for i, k in enumerate(batch.series)
        }
        held: list[IntArray] = []
        for row in self._export(match, lo, hi + 1):
            m = row["metric"]
            i = index.get((m["__name__"], m["kind"], m["id"]))
            if i is not None:
                ts = np.asarray(row["timestamps"], dtype=np.int64) // 1000
                held.append(i * (hi - lo + 1) + (ts - lo))
        if not held:
            return batch
        codes = batch.series_idx.astype(np.int64) * (hi - lo + 1) + (batch.ts - lo)
        keep = ~np.isin(codes, np.concatenate(held))
        return SampleBatch(
            batch.series,
            batch.hosts,
            batch.series_idx[keep],
            batch.host_idx[keep],
            batch.ts[keep],
            batch.values[keep],
        )

    def _flush_quietly(self) -> None:
        """Ask the server to make buffered samples searchable; a server that refuses is slower."""
        with contextlib.suppress(StoreError):
            self.flush()

    def _mark_late(self, batch: SampleBatch) -> None:
        """Series with samples behind a rollup watermark get ``corralmeta_dirty``: rolled again."""
        marks = [w for w in (self._watermark(r) for r in MATERIALISED) if w is not None]
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

    def _lines(self, batch: SampleBatch) -> Iterator[str]:
        """One import line per series, then ``corralmeta_placement{kind, id, host} 1`` lines.

        Placement is written at the timestamps of each entity's fullest series
        in the batch, split by host; readers look hosts up as of a time.
        """
        order = np.argsort(batch.series_idx, kind="stable")
        cuts = np.flatnonzero(np.diff(batch.series_idx[order])) + 1
        fullest: dict[tuple[EntityKind, str], IntArray] = {}
        for chunk in np.split(order, cuts):
            key = batch.series[int(batch.series_idx[chunk[0]])]
            labels = {"__name__": f"corral_{key.metric}", "kind": key.kind.value, "id": key.entity}
            yield _line(labels, batch.ts[chunk], batch.values[chunk])
            ent = (key.kind, key.entity)
            if ent not in fullest or len(chunk) > len(fullest[ent]):
                fullest[ent] = chunk
        for (kind, entity), chunk in fullest.items():
            hosts = batch.host_idx[chunk]
            for h in np.unique(hosts).tolist():
                ts = batch.ts[chunk[hosts == h]]
                if not self._first_placement(kind, entity, batch.hosts[h], ts):
                    continue
                labels = {
                    "__name__": "corralmeta_placement",
                    "kind": kind.value,
                    "id": entity,
                    "host": batch.hosts[h],
                }
                yield _line(labels, ts, np.ones(len(ts)))

    def _first_placement(self, kind: EntityKind, entity: str, host: str, ts: IntArray) -> bool:
        """False when this process already wrote this entity's placement at exactly these times
        (a backfill writes one metric at a time over the same times)."""
        key = (kind.value, entity, host)
        digest = hash(np.ascontiguousarray(ts).tobytes())
        if self._placed.get(key) == digest:
            return False
        self._placed[key] = digest
        if len(self._placed) > 200_000:
            self._placed.popitem(last=False)
        return True

    # -- queries ----------------------------------------------------------------
    def raw(
        self, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[tuple[int, str, float]]:
        check_range(start, end)
        when, hosts = self._placements(kind, entity, start, end)
        out: list[tuple[int, str, float]] = []
        for row in self._export(_sel(kind, metric, entity), start, end):
            ts, values = _first_per_time(row)
            at = np.clip(np.searchsorted(when, ts, side="right") - 1, 0, None)
            for t, i, v in zip(ts.tolist(), at.tolist(), values.tolist(), strict=True):
                out.append((t, hosts[i] if hosts else "", v))
        return sorted(out)

    def _placements(
        self, kind: EntityKind, entity: str, start: int, end: int
    ) -> tuple[IntArray, list[str]]:
        """Times (sorted) and the host at each: where the entity was, as of a time."""
        match = f"corralmeta_placement{{kind={_q(kind.value)},id={_q(entity)}}}"
        pairs = sorted(
            (int(t_ms) // 1000, row["metric"]["host"])
            for row in self._export(match, start - 86400, end)
            for t_ms in row["timestamps"]
        )
        return np.array([t for t, _ in pairs], dtype=np.int64), [h for _, h in pairs]

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

    def series_many(
        self,
        kind: EntityKind,
        entities: Sequence[str],
        metrics: Sequence[str],
        start: int,
        end: int,
        step: int,
        stat: Stat = Stat.avg,
    ) -> SeriesColumns:
        """One range query per metric for the whole id list (split only where the server's
        query-length limit would be passed); the same PromQL ``series`` evaluates."""
        check_range(start, end, step)
        first = align(start, step)
        if first < start or not entities:
            return self._many_one_by_one(kind, entities, metrics, start, end, step, stat)
        rows = {e: i for i, e in enumerate(entities)}
        parts: list[tuple[int, int, float, float]] = []
        for j, metric in enumerate(metrics):
            for ids in _id_groups(entities):
                sel = f"corral_{metric}{{kind={_q(kind.value)},id=~{_q(ids)}}}"
                query = _FN[stat].format(sel=sel, w=step)
                for row in self._query_range_form(query, first + step - _EPS, end - _EPS, step):
                    i = rows[row["metric"]["id"]]
                    parts += [(i, j, float(t), float(v)) for t, v in row["values"]]
        return _columns(entities, metrics, parts, step)

    def _many_one_by_one(
        self,
        kind: EntityKind,
        entities: Sequence[str],
        metrics: Sequence[str],
        start: int,
        end: int,
        step: int,
        stat: Stat,
    ) -> SeriesColumns:
        """A start inside a bucket must be clipped from raw samples, series by series."""
        parts = [
            (i, j, float(p.ts + step) - _EPS, p.value)
            for i, e in enumerate(entities)
            for j, mt in enumerate(metrics)
            for p in self.series(kind, e, mt, start, end, step, stat)
        ]
        return _columns(entities, metrics, parts, step)

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
        """Newest value, time and host of every series seen at or after ``since``.

        The first call reads the whole window with PromQL and keeps the answer (one per set of
        kinds, a few sets at most); a later call for the same kinds whose ``since`` is not
        earlier than that read's exports only the samples from the last read's time minus
        ``LATEST_MARGIN_S`` on and merges them in. A sample that reaches the server later than
        that margin behind its timestamp is missed until the whole window is read again:
        every ``LATEST_FULL_EVERY_S``, for an earlier ``since``, and by a new store object.
        """
        if not kinds:
            return []
        key = tuple(sorted(k.value for k in kinds))
        with self._latest_lock:
            now = self._server_now()
            cache = self._latest_caches.get(key)
            if cache is None or since < cache.since or now - cache.full_at >= LATEST_FULL_EVERY_S:
                cache = self._latest_full(key, since, now)
                self._latest_caches[key] = cache
            else:
                self._latest_delta(cache, now)
                cache.read_to = now
            self._latest_caches.move_to_end(key)
            while len(self._latest_caches) > _LATEST_CACHES:  # the least recently read
                self._latest_caches.popitem(last=False)
            return cache.answer(since)

    def _latest_full(self, kinds: tuple[str, ...], since: int, now: float) -> _LatestCache:
        window = max(1, int(now - since) + 1)
        kre = "|".join(kinds)
        sel = f'{{__name__=~"corral_.+",kind=~"{kre}"}}'
        values = self._query(f"last_over_time({sel}[{window}s]) keep_metric_names", now)
        stamps = self._query(f"tlast_over_time({sel}[{window}s]) keep_metric_names", now)
        when = {_labels_key(r["metric"]): float(r["value"][1]) for r in stamps}
        cache = _LatestCache(kinds, since, now)
        for r in values:
            m = r["metric"]
            t = int(when.get(_labels_key(m), float(r["value"][0])))
            cache.put((m["kind"], m["__name__"], m["id"]), t, float(r["value"][1]))
        sel = f'corralmeta_placement{{kind=~"{kre}"}}'
        for r in self._query(f"tlast_over_time({sel}[{window}s])", now):
            m = r["metric"]
            cache.place((m["kind"], m["id"]), int(float(r["value"][1])), m["host"])
        return cache

    def _latest_delta(self, cache: _LatestCache, now: float) -> None:
        """Merge the samples from ``read_to - LATEST_MARGIN_S`` to ``now``: one export of the
        value series and the placement series together."""
        kre = "|".join(cache.kinds)
        params = {
            "match[]": [
                f'{{__name__=~"corral_.+",kind=~"{kre}"}}',
                f'corralmeta_placement{{kind=~"{kre}"}}',
            ],
            "start": f"{cache.read_to - LATEST_MARGIN_S:.3f}",
            "end": f"{now:.3f}",
        }
        # uncompressed: gzip of tens of MB costs the server more CPU than the bytes cost
        body = self._get("/api/v1/export", params, _PLAIN).content.strip()
        if not body:
            return
        for row in orjson.loads(b"[" + body.replace(b"\n", b",") + b"]"):
            m, stamps = row["metric"], row["timestamps"]
            t_ms = max(stamps)
            if m["__name__"] == "corralmeta_placement":
                cache.place((m["kind"], m["id"]), t_ms // 1000, m["host"])
                continue
            value = float(row["values"][stamps.index(t_ms)])
            cache.put((m["kind"], m["__name__"], m["id"]), t_ms // 1000, value)

    def _server_now(self) -> float:
        return time.time()

    # -- rollups ------------------------------------------------------------------
    def rollup_rows(
        self, resolution: int, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[RollupRow]:
        if resolution not in MATERIALISED:
            return self._rollup_rows_from_raw(resolution, kind, entity, metric, start, end)
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

    def _rollup_rows_from_raw(
        self, resolution: int, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[RollupRow]:
        """The 5-minute level, summarised from raw samples on read (they are kept as long)."""
        rows = self.raw(kind, entity, metric, start, end)
        if not rows:
            return []
        ts = np.array([t for t, _, _ in rows], dtype=np.int64)
        st = bucket_stats(ts, np.array([v for *_, v in rows]), resolution)
        return [
            RollupRow(int(t), int(n), float(a), float(b), float(c), float(d))
            for t, n, a, b, c, d in zip(
                st.ts, st.count, st.min, st.avg, st.max, st.p95, strict=True
            )
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
        self.flush()  # samples imported a moment ago are not exported until flushed
        made = self._reroll_dirty()
        spans: dict[int, tuple[int, int]] = {}
        for r in MATERIALISED:
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
            first = self._query(
                f"tfirst_over_time({_sel(kind, metric, ent)}[3650d])", self._server_now()
            )
            for r in MATERIALISED:
                wm = self._watermark(r)
                if first and wm is not None:
                    lo = align(int(float(first[0]["value"][1])), r)
                    made += self._rollup_range({r: (lo, wm)}, _sel(kind, metric, ent))
            self.flush()
            self._delete(f"corralmeta_dirty{{{ids}}}")  # only once redone: a kill redoes it
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
        poster = ThreadPoolExecutor(max_workers=1)
        pending: list[Future[None]] = []
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
                        while len(pending) >= 2:  # bound memory: two bodies in flight
                            pending.pop(0).result()
                        pending.append(poster.submit(self._post_lines, "\n".join(lines)))
                        lines = []
            pending.append(poster.submit(self._post_lines, "\n".join(lines)))
            for f in pending:
                f.result()
        except httpx.HTTPError as exc:
            raise StoreError(f"VictoriaMetrics at {self.url} is unreachable: {exc}") from None
        finally:
            poster.shutdown(wait=True)
        return made

    @staticmethod
    def _rollup_series(
        row: dict[str, Any], spans: dict[int, tuple[int, int]], out: list[str]
    ) -> int:
        m = row["metric"]
        ts, values = _first_per_time(row)
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


class _LatestCache:
    """What ``latest`` read last: per series ``(kind, name, id)`` its newest (time, value), per
    entity its newest (time, host), the kinds and ``since`` asked for, the server time read up
    to and when the whole window was last read. Entries older than that read's ``since`` are
    dropped when answering, so it holds at most the series it was asked of; the sorted key
    order is kept until a series comes or goes (the answer is sorted)."""

    def __init__(self, kinds: tuple[str, ...], since: int, read_to: float) -> None:
        self.kinds, self.since, self.read_to, self.full_at = kinds, since, read_to, read_to
        self.values: dict[tuple[str, str, str], tuple[int, float]] = {}
        self.hosts: dict[tuple[str, str], tuple[int, str]] = {}
        self.order: list[tuple[str, str, str]] | None = None

    def put(self, key: tuple[str, str, str], t: int, value: float) -> None:
        old = self.values.get(key)
        if old is None:
            self.order = None
        elif t < old[0]:
            return
        self.values[key] = (t, value)

    def place(self, entity: tuple[str, str], t: int, host: str) -> None:
        old = self.hosts.get(entity)
        if old is None or t > old[0]:
            self.hosts[entity] = (t, host)

    def answer(self, since: int) -> list[Latest]:
        """The series seen at or after ``since``, sorted by kind, metric, id; what is older
        than the full read's ``since`` is dropped (a later ``since`` only filters, so callers
        asking different windows of one store do not make it read everything again)."""
        if self.order is None:
            self.order = sorted(self.values)
        values, hosts, kinds = self.values, self.hosts, _KIND_OF
        out = []
        stale = False
        for key in self.order:
            t, v = values[key]
            if t < since:
                stale = stale or t < self.since
                continue
            kind, name, ent = key
            th = hosts.get((kind, ent))
            host = th[1] if th is not None and th[0] >= since else ""
            out.append(Latest(kinds[kind], ent, host, name[len("corral_") :], t, v))
        if stale:
            self.values = {k: tv for k, tv in values.items() if tv[0] >= self.since}
            self.hosts = {k: th for k, th in hosts.items() if th[0] >= self.since}
            self.order = [k for k in self.order if k in self.values]
        return out


_KIND_OF = {k.value: k for k in EntityKind}
_PLAIN = {"Accept-Encoding": "identity"}


def _id_groups(entities: Sequence[str]) -> Iterator[str]:
    """The ids as anchored alternations, each short enough for one query."""
    group: list[str] = []
    size = 0
    for e in entities:
        alt = re.escape(e)
        if group and size + len(alt) + 1 > _MAX_IDS_CHARS:
            yield "|".join(group)
            group, size = [], 0
        group.append(alt)
        size += len(alt) + 1
    if group:
        yield "|".join(group)


def _columns(
    entities: Sequence[str],
    metrics: Sequence[str],
    parts: list[tuple[int, int, float, float]],
    step: int,
) -> SeriesColumns:
    """Points evaluated at a bucket's last millisecond back to the bucket's start."""
    if not parts:
        return SeriesColumns.empty(entities, metrics)
    e, m, t, v = (np.array(c) for c in zip(*parts, strict=True))
    return SeriesColumns(
        tuple(entities),
        tuple(metrics),
        e.astype(np.int64),
        m.astype(np.int64),
        np.round(t + _EPS).astype(np.int64) - step,
        v.astype(np.float64),
    )


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


def _first_per_time(row: dict[str, Any]) -> tuple[IntArray, FloatArray]:
    """An exported series' samples in time order, one per second (the server may hold copies
    written before Corral stopped writing them, when it runs without deduplication)."""
    ts = np.asarray(row["timestamps"], dtype=np.int64) // 1000
    values = np.asarray(row["values"], dtype=np.float64)
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    first = np.r_[True, ts[1:] != ts[:-1]] if len(ts) else np.zeros(0, dtype=bool)
    return ts[first], values[first]


def _bodies(lines: Iterable[str], max_bytes: int = 8 << 20) -> Iterator[str]:
    """Lines joined into import bodies of about ``max_bytes``."""
    part: list[str] = []
    size = 0
    for line in lines:
        part.append(line)
        size += len(line) + 1
        if size >= max_bytes:
            yield "\n".join(part)
            part, size = [], 0
    if part:
        yield "\n".join(part)


def _reduce(values: list[float], stat: Stat) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if stat is Stat.avg:
        return float(arr.mean())
    if stat is Stat.min:
        return float(arr.min())
    if stat is Stat.max:
        return float(arr.max())
    return float(np.quantile(arr, 0.95))
