# ruff: noqa: S608  (SQL text only ever interpolates integers and fixed table names)
"""The embedded default store: one DuckDB file, raw samples plus three rollup tables.

Names are stored once (``series``, ``hosts``) and samples carry small integer
ids, so a sample costs four numbers. Rollups are recomputed from raw data for
every bucket that closed since the last run, and again for older buckets when
late samples arrive (the watermark moves back), so they always agree with raw data that
is still kept.

DuckDB lets one process open a file for writing; collector and API in two
processes need the VictoriaMetrics store (or one process doing both).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corral.domain.metrics import (
    EntityKind,
    Latest,
    Point,
    Ranked,
    RollupRow,
    SampleBatch,
    SeriesKey,
    Stat,
)
from corral.errors import StoreError
from corral.metrics.store.base import (
    ROLLUP_RESOLUTIONS,
    RetentionPolicy,
    align,
    check_range,
    finest_covering,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series(
  id INTEGER PRIMARY KEY, kind VARCHAR NOT NULL, entity VARCHAR NOT NULL, metric VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS hosts(id INTEGER PRIMARY KEY, name VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS samples(sid INTEGER NOT NULL, ts BIGINT NOT NULL,
  host INTEGER NOT NULL, value DOUBLE NOT NULL);
CREATE TABLE IF NOT EXISTS marks(name VARCHAR PRIMARY KEY, value BIGINT NOT NULL);
"""

_ROLLUP_DDL = """CREATE TABLE IF NOT EXISTS rollup_{r}(sid INTEGER NOT NULL, ts BIGINT NOT NULL,
  n BIGINT NOT NULL, vmin DOUBLE, vavg DOUBLE, vmax DOUBLE, vp95 DOUBLE);"""

_STAT_SQL = {
    Stat.avg: "avg(value)",
    Stat.min: "min(value)",
    Stat.max: "max(value)",
    Stat.p95: "quantile_cont(value, 0.95)",
}

# Combining rollup rows into a coarser bucket. p95 of a bucket made of rollup
# rows is the highest child p95: an upper bound, used only once raw data aged out.
_COMBINE_SQL = {
    Stat.avg: "sum(vavg * n) / sum(n)",
    Stat.min: "min(vmin)",
    Stat.max: "max(vmax)",
    Stat.p95: "max(vp95)",
}


class DuckDBStore:
    """MetricsStore on a DuckDB file (or ``:memory:``)."""

    deletes_raw = True

    def __init__(self, path: str | Path, retention: RetentionPolicy | None = None) -> None:
        import duckdb

        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise StoreError(
                f"cannot open the metrics file {self.path}: {exc}; is another Corral process "
                "using it?"
            ) from None
        self.retention = retention or RetentionPolicy()
        self._lock = threading.RLock()
        self._db.execute("SET preserve_insertion_order = false")
        self._db.execute(_SCHEMA)
        for r in ROLLUP_RESOLUTIONS:
            self._db.execute(_ROLLUP_DDL.format(r=r))
        self._series: dict[SeriesKey, int] = {}
        self._hosts: dict[str, int] = {}
        self._load_names()

    # -- names -----------------------------------------------------------------
    def _load_names(self) -> None:
        for sid, kind, entity, metric in self._db.execute(
            "SELECT id, kind, entity, metric FROM series"
        ).fetchall():
            self._series[SeriesKey(EntityKind(kind), entity, metric)] = sid
        for hid, name in self._db.execute("SELECT id, name FROM hosts").fetchall():
            self._hosts[name] = hid

    def _ids(self, batch: SampleBatch) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Integer ids for the batch's series and hosts, inserting the new names in bulk."""
        new_s = [k for k in dict.fromkeys(batch.series) if k not in self._series]
        for k in new_s:
            self._series[k] = len(self._series)
        if new_s:
            rows = {  # noqa: F841  (read by DuckDB by name below)
                "id": np.array([self._series[k] for k in new_s], dtype=np.int32),
                "kind": np.array([k.kind.value for k in new_s], dtype=object),
                "entity": np.array([k.entity for k in new_s], dtype=object),
                "metric": np.array([k.metric for k in new_s], dtype=object),
            }
            self._db.execute("INSERT INTO series SELECT id, kind, entity, metric FROM rows")
        new_h = [h for h in dict.fromkeys(batch.hosts) if h not in self._hosts]
        for h in new_h:
            self._hosts[h] = len(self._hosts)
        if new_h:
            self._db.executemany(
                "INSERT INTO hosts VALUES (?, ?)", [(self._hosts[h], h) for h in new_h]
            )
        smap = np.array([self._series[k] for k in batch.series], dtype=np.int32)
        hmap = np.array([self._hosts[h] for h in batch.hosts], dtype=np.int32)
        return smap, hmap

    def _sid(self, kind: EntityKind, entity: str, metric: str) -> int | None:
        return self._series.get(SeriesKey(kind, entity, metric))

    # -- marks -----------------------------------------------------------------
    def _mark(self, name: str) -> int | None:
        row = self._db.execute("SELECT value FROM marks WHERE name = ?", [name]).fetchone()
        return None if row is None else int(row[0])

    def _set_mark(self, name: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", [name, value])

    def _horizon(self, resolution: int) -> int:
        return self._mark(f"horizon_{resolution}") or 0

    # -- write -----------------------------------------------------------------
    def write(self, batch: SampleBatch) -> int:
        n = len(batch)
        if n == 0:
            return 0
        with self._lock:
            saved = (dict(self._series), dict(self._hosts))
            self._db.execute("BEGIN TRANSACTION")
            try:
                smap, hmap = self._ids(batch)
                cols = {  # noqa: F841  (read by DuckDB by name in the INSERT below)
                    "sid": smap[batch.series_idx],
                    "ts": batch.ts.astype(np.int64, copy=False),
                    "host": hmap[batch.host_idx],
                    "value": batch.values.astype(np.float64, copy=False),
                }
                self._db.execute("INSERT INTO samples SELECT sid, ts, host, value FROM cols")
                self._note_late(int(batch.ts.min()))
                self._db.execute("COMMIT")
            except Exception as exc:
                self._db.execute("ROLLBACK")
                self._series, self._hosts = saved
                raise StoreError(f"writing {n} samples to {self.path} failed: {exc}") from exc
        return n

    def _note_late(self, first_ts: int) -> None:
        """Move each level's watermark back to the oldest written time, so rollups get redone."""
        for r in ROLLUP_RESOLUTIONS:
            wm = self._mark(f"rolled_{r}")
            if wm is None or first_ts < wm:
                self._set_mark(f"rolled_{r}", align(first_ts, r))

    # -- rollups and retention ---------------------------------------------------
    def rollup(self, now: int) -> int:
        """Roll up ``[watermark, now)`` per level; rollups are then exact up to the new mark."""
        made = 0
        with self._lock:
            for r in ROLLUP_RESOLUTIONS:
                made += self._rollup_level(r, align(now, r))
        return made

    def _rollup_level(self, r: int, upto: int) -> int:
        wm = self._mark(f"rolled_{r}")
        if wm is None:
            return 0
        frm = max(wm, align(self._horizon(0), r))
        if frm >= upto:
            return 0
        self._db.execute(f"DELETE FROM rollup_{r} WHERE ts >= ? AND ts < ?", [frm, upto])
        chunk = max(r, 86400) * (30 if r == 86400 else 1)  # bounded hash tables
        for lo in range(frm, upto, chunk):
            self._db.execute(
                f"""INSERT INTO rollup_{r}
                SELECT sid, ts - ts % {r} AS b, count(*), min(value), avg(value), max(value),
                       quantile_cont(value, 0.95)
                FROM samples WHERE ts >= ? AND ts < ? GROUP BY sid, b""",
                [lo, min(upto, lo + chunk)],
            )
        row = self._db.execute(
            f"SELECT count(*) FROM rollup_{r} WHERE ts >= ? AND ts < ?", [frm, upto]
        ).fetchone()
        self._set_mark(f"rolled_{r}", upto)
        return int(row[0]) if row else 0

    def apply_retention(self, now: int) -> int:
        dropped = 0
        with self._lock:
            for r, table in ((0, "samples"), *((r, f"rollup_{r}") for r in ROLLUP_RESOLUTIONS)):
                cutoff = now - self.retention.for_resolution(r)
                row = self._db.execute(
                    f"SELECT count(*) FROM {table} WHERE ts < ?", [cutoff]
                ).fetchone()
                self._db.execute(f"DELETE FROM {table} WHERE ts < ?", [cutoff])
                self._set_mark(f"horizon_{r}", max(cutoff, self._horizon(r)))
                dropped += int(row[0]) if row else 0
        return dropped

    # -- queries -----------------------------------------------------------------
    def raw(
        self, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[tuple[int, str, float]]:
        check_range(start, end)
        with self._lock:
            sid = self._sid(kind, entity, metric)
            if sid is None:
                return []
            rows = self._db.execute(
                """SELECT ts, h.name, value FROM samples JOIN hosts h ON h.id = samples.host
                WHERE sid = ? AND ts >= ? AND ts < ? ORDER BY ts""",
                [sid, start, end],
            ).fetchall()
        return [(int(t), str(h), float(v)) for t, h, v in rows]

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
        with self._lock:
            sid = self._sid(kind, entity, metric)
            if sid is None:
                return []
            level = self._level_for(start, step, stat)
            rows = (
                self._series_raw(sid, start, end, step, stat)
                if level is None
                else self._series_rollup(sid, start, end, step, stat, level)
            )
        return [Point(int(t), float(v)) for t, v in rows if v is not None]

    def _level_for(self, start: int, step: int, stat: Stat) -> int | None:
        """None to read raw samples; else the rollup resolution to read (raw aged out)."""
        if start >= self._horizon(0):
            return None  # raw data is exact for every stat, and one series reads fast
        usable = [r for r in ROLLUP_RESOLUTIONS if start >= self._horizon(r)]
        return finest_covering(usable, step)

    def _series_raw(self, sid: int, start: int, end: int, step: int, stat: Stat) -> list[Any]:
        return self._db.execute(
            f"""SELECT ts - ts % {step} AS b, {_STAT_SQL[stat]} FROM samples
            WHERE sid = ? AND ts >= ? AND ts < ? GROUP BY b ORDER BY b""",
            [sid, start, end],
        ).fetchall()

    def _series_rollup(
        self, sid: int, start: int, end: int, step: int, stat: Stat, r: int
    ) -> list[Any]:
        """Rolled-up buckets before the level's watermark, raw samples after it."""
        wm = self._mark(f"rolled_{r}") or start
        q = f"""WITH parts AS (
              SELECT ts, n, vmin, vavg, vmax, vp95 FROM rollup_{r}
              WHERE sid = $sid AND ts >= $start AND ts < least($end, $wm)
              UNION ALL
              SELECT ts - ts % {r}, count(*), min(value), avg(value), max(value),
                     quantile_cont(value, 0.95)
              FROM samples WHERE sid = $sid AND ts >= greatest($start, $wm) AND ts < $end
              GROUP BY ts - ts % {r})
            SELECT ts - ts % {step} AS b, {_COMBINE_SQL[stat]} FROM parts GROUP BY b ORDER BY b"""
        return self._db.execute(q, {"sid": sid, "start": start, "end": end, "wm": wm}).fetchall()

    def rollup_rows(
        self, resolution: int, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[RollupRow]:
        with self._lock:
            sid = self._sid(kind, entity, metric)
            if sid is None or resolution not in ROLLUP_RESOLUTIONS:
                return []
            rows = self._db.execute(
                f"""SELECT ts, n, vmin, vavg, vmax, vp95 FROM rollup_{resolution}
                WHERE sid = ? AND ts >= ? AND ts < ? ORDER BY ts""",
                [sid, start, end],
            ).fetchall()
        return [RollupRow(int(t), int(n), a, b, c, d) for t, n, a, b, c, d in rows]

    def per_entity(
        self, kind: EntityKind, metric: str, start: int, end: int, stat: Stat = Stat.p95
    ) -> dict[str, float]:
        check_range(start, end)
        with self._lock:
            sids = [i for k, i in self._series.items() if k.kind is kind and k.metric == metric]
            if not sids:
                return {}
            rows = self._db.execute(
                self._per_entity_sql(start, stat),
                [min(sids), max(sids), kind.value, metric, start, end],
            )
            return {str(e): float(v) for e, v in rows.fetchall() if v is not None}

    def _per_entity_sql(self, start: int, stat: Stat) -> str:
        """Raw data while it is kept; else the 5-minute rollup (its averages for p95).

        The explicit id range lets DuckDB skip row groups of other metrics when a
        metric's series were created together (as a backfill does).
        """
        if start >= self._horizon(0):
            table, expr = "samples", _STAT_SQL[stat]
        else:
            table = "rollup_300"
            expr = {
                Stat.avg: "sum(vavg * n) / sum(n)",
                Stat.min: "min(vmin)",
                Stat.max: "max(vmax)",
                Stat.p95: "quantile_cont(vavg, 0.95)",
            }[stat]
        return f"""WITH agg AS (
            SELECT sid, {expr} AS v FROM {table}
            WHERE sid BETWEEN ? AND ?
              AND sid IN (SELECT id FROM series WHERE kind = ? AND metric = ?)
              AND ts >= ? AND ts < ? GROUP BY sid)
            SELECT s.entity, agg.v FROM agg JOIN series s ON s.id = agg.sid"""

    def top(
        self, kind: EntityKind, metric: str, start: int, end: int, n: int, stat: Stat = Stat.avg
    ) -> list[Ranked]:
        values = self.per_entity(kind, metric, start, end, stat)
        best = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[: max(n, 0)]
        return [Ranked(e, v) for e, v in best]

    def latest(self, kinds: Sequence[EntityKind], since: int) -> list[Latest]:
        if not kinds:
            return []
        marks = ",".join("?" for _ in kinds)
        with self._lock:
            rows = self._db.execute(
                f"""WITH last AS (
                  SELECT sid, arg_max(host, ts) AS host, max(ts) AS ts, arg_max(value, ts) AS v
                  FROM samples WHERE ts >= ? GROUP BY sid)
                SELECT s.kind, s.entity, h.name, s.metric, last.ts, last.v FROM last
                JOIN series s ON s.id = last.sid JOIN hosts h ON h.id = last.host
                WHERE s.kind IN ({marks}) ORDER BY s.kind, s.metric, s.entity""",
                [since, *(k.value for k in kinds)],
            ).fetchall()
        return [Latest(EntityKind(k), e, h, m, int(t), float(v)) for k, e, h, m, t, v in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
