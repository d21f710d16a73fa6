# ruff: noqa: S608  (SQL text only ever interpolates integers and fixed table names)
"""The embedded default store: one DuckDB file, raw samples plus three rollup tables.

Names are stored once (``series``, ``hosts``) and samples carry small integer
ids, so a sample costs four numbers. Rollups are recomputed from raw data for
every bucket that closed since the last run, and again for older buckets when
late samples arrive (the watermark moves back), so they always agree with raw data that
is still kept.

Samples are unique per (series, time): a write replaces what is stored at its
pairs (re-running a backfill changes nothing), in one transaction. There is no
index to enforce it: on 10 M samples a primary key made the file 5.5 times as
large and writes 5 times slower, so every write goes through ``write``.

The file is opened per operation (``duckdb_file``) so the collector, the API
and every CLI command can use it from their own processes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
    SeriesColumns,
    align,
    check_range,
    finest_covering,
)
from corral.metrics.store.duckdb_file import SharedFile, shared_file

Ids = np.ndarray[Any, Any]

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


# ``_COMBINE_SQL`` of a bucket made of one rollup row.
_ONE_ROW_SQL = {Stat.avg: "vavg * n / n", Stat.min: "vmin", Stat.max: "vmax", Stat.p95: "vp95"}


class DuckDBStore:
    """MetricsStore on a DuckDB file (or ``:memory:``), opened per operation (see duckdb_file)."""

    deletes_raw = True

    def __init__(self, path: str | Path, retention: RetentionPolicy | None = None) -> None:
        self.path = str(path)
        self.retention = retention or RetentionPolicy()
        self._file: SharedFile | MemoryFile
        if self.path == ":memory:":
            self._file = MemoryFile(_prepare)
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._file = shared_file(self.path, _prepare)
        self._series: dict[SeriesKey, int] = {}
        #: series ids by (kind, metric) then entity, rebuilt when names were added (see _sids)
        self._by_metric: dict[tuple[EntityKind, str], dict[str, int]] = {}
        self._by_metric_of: tuple[int, int] = (0, -1)
        self._hosts: dict[str, int] = {}
        with self._file.connect(write=False) as db:
            self._load_names(db)

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[Any]:
        """A connection for one operation, with this store's names brought up to date."""
        with self._file.connect(write) as db:
            self._load_names(db)
            yield db

    # -- names -----------------------------------------------------------------
    def _load_names(self, db: Any) -> None:
        """Names other processes added since the last look (ids only grow, from 0)."""
        for sid, kind, entity, metric in db.execute(
            "SELECT id, kind, entity, metric FROM series WHERE id >= ? ORDER BY id",
            [len(self._series)],
        ).fetchall():
            self._series[SeriesKey(EntityKind(kind), entity, metric)] = sid
        for hid, name in db.execute(
            "SELECT id, name FROM hosts WHERE id >= ? ORDER BY id", [len(self._hosts)]
        ).fetchall():
            self._hosts[name] = hid

    def _ids(self, db: Any, batch: SampleBatch) -> tuple[Ids, Ids]:
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
            db.execute("INSERT INTO series SELECT id, kind, entity, metric FROM rows")
        new_h = [h for h in dict.fromkeys(batch.hosts) if h not in self._hosts]
        for h in new_h:
            self._hosts[h] = len(self._hosts)
        if new_h:
            db.executemany("INSERT INTO hosts VALUES (?, ?)", [(self._hosts[h], h) for h in new_h])
        smap = np.array([self._series[k] for k in batch.series], dtype=np.int32)
        hmap = np.array([self._hosts[h] for h in batch.hosts], dtype=np.int32)
        return smap, hmap

    def _sid(self, kind: EntityKind, entity: str, metric: str) -> int | None:
        return self._series.get(SeriesKey(kind, entity, metric))

    def _sids(self, kind: EntityKind, metric: str) -> dict[str, int]:
        """Series ids of one metric by entity: a chunk of a fleet looks up thousands at once,
        and a plain string key is far cheaper than building a ``SeriesKey`` for each."""
        now_of = (id(self._series), len(self._series))  # a failed write restores another dict
        if self._by_metric_of != now_of:
            index: dict[tuple[EntityKind, str], dict[str, int]] = {}
            for k, sid in self._series.items():
                index.setdefault((k.kind, k.metric), {})[k.entity] = sid
            self._by_metric, self._by_metric_of = index, now_of
        return self._by_metric.get((kind, metric), {})

    # -- write -----------------------------------------------------------------
    def write(self, batch: SampleBatch) -> int:
        """Store the batch in one transaction; a (series, time) already stored is replaced."""
        n = len(batch)
        if n == 0:
            return 0
        batch = batch.last_per_series_and_time()
        with self._file.connect(write=True) as db:
            saved = (dict(self._series), dict(self._hosts))
            db.execute("BEGIN TRANSACTION")
            try:
                self._load_names(db)
                smap, hmap = self._ids(db, batch)
                cols = {
                    "sid": smap[batch.series_idx],
                    "ts": batch.ts.astype(np.int64, copy=False),
                    "host": hmap[batch.host_idx],
                    "value": batch.values.astype(np.float64, copy=False),
                }
                _replace_samples(db, cols)
                _note_late(db, int(batch.ts.min()))
                db.execute("COMMIT")
            except Exception as exc:
                db.execute("ROLLBACK")
                self._series, self._hosts = saved
                raise StoreError(f"writing {n} samples to {self.path} failed: {exc}") from exc
        return n

    # -- rollups and retention ---------------------------------------------------
    def rollup(self, now: int) -> int:
        """Roll up ``[watermark, now)`` per level, one chunk per transaction.

        Each chunk replaces its buckets and moves the watermark in one commit, so
        a kill leaves every bucket either as it was or rolled up anew, and the
        next run carries on from the watermark. The file is let go between chunks.
        """
        made = 0
        for r in ROLLUP_RESOLUTIONS:
            upto = align(now, r)
            chunk = max(r, 86400) * (30 if r == 86400 else 1)  # bounded hash tables
            while True:
                with self._db(write=True) as db:
                    done = _rollup_chunk(db, r, upto, chunk)
                if done is None:
                    break
                made += done
        return made

    def apply_retention(self, now: int) -> int:
        dropped = 0
        with self._db(write=True) as db, _transaction(db):
            for r, table in ((0, "samples"), *((r, f"rollup_{r}") for r in ROLLUP_RESOLUTIONS)):
                cutoff = now - self.retention.for_resolution(r)
                row = db.execute(f"SELECT count(*) FROM {table} WHERE ts < ?", [cutoff]).fetchone()
                db.execute(f"DELETE FROM {table} WHERE ts < ?", [cutoff])
                _set_mark(db, f"horizon_{r}", max(cutoff, _horizon(db, r)))
                dropped += int(row[0]) if row else 0
        return dropped

    # -- queries -----------------------------------------------------------------
    def raw(
        self, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[tuple[int, str, float]]:
        check_range(start, end)
        with self._db() as db:
            sid = self._sid(kind, entity, metric)
            if sid is None:
                return []
            rows = db.execute(
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
        with self._db() as db:
            sid = self._sid(kind, entity, metric)
            if sid is None:
                return []
            level = _level_for(db, start, step)
            rows = (
                _series_raw(db, sid, start, end, step, stat)
                if level is None
                else _series_rollup(db, sid, start, end, step, stat, level)
            )
        return [Point(int(t), float(v)) for t, v in rows if v is not None]

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
        """One query for every pair: the wanted series ids go in as a table and the same
        level (raw or rollup) ``series`` would read answers all of them."""
        check_range(start, end, step)
        with self._db() as db:
            by_entity = [self._sids(kind, mt) for mt in metrics]
            pairs = [
                (sid, i, j)
                for i, e in enumerate(entities)
                for j, known in enumerate(by_entity)
                if (sid := known.get(e)) is not None
            ]
            if not pairs:
                return SeriesColumns.empty(entities, metrics)
            sids = np.array([p[0] for p in pairs], dtype=np.int64)
            want = {"sid": sids.astype(np.int32)}  # noqa: F841  (read by DuckDB by name below)
            lo, hi = int(sids.min()), int(sids.max())
            level = _level_for(db, start, step)
            params = {"start": start, "end": end}
            if level is not None:
                params["wm"] = _mark(db, f"rolled_{level}") or start
            cols = db.execute(_many_sql(step, stat, level, lo, hi), params).fetchnumpy()
        # each wanted series id back to its (entity, metric), by a lookup over the id range
        entity = np.zeros(hi - lo + 1, dtype=np.int64)
        metric = np.zeros(hi - lo + 1, dtype=np.int64)
        entity[sids - lo] = [p[1] for p in pairs]
        metric[sids - lo] = [p[2] for p in pairs]
        at = np.asarray(cols["sid"], dtype=np.int64) - lo
        return SeriesColumns(
            tuple(entities),
            tuple(metrics),
            entity[at],
            metric[at],
            np.asarray(cols["b"], dtype=np.int64),
            np.asarray(cols["v"], dtype=np.float64),
        )

    def rollup_rows(
        self, resolution: int, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[RollupRow]:
        with self._db() as db:
            sid = self._sid(kind, entity, metric)
            if sid is None or resolution not in ROLLUP_RESOLUTIONS:
                return []
            rows = db.execute(
                f"""SELECT ts, n, vmin, vavg, vmax, vp95 FROM rollup_{resolution}
                WHERE sid = ? AND ts >= ? AND ts < ? ORDER BY ts""",
                [sid, start, end],
            ).fetchall()
        return [RollupRow(int(t), int(n), a, b, c, d) for t, n, a, b, c, d in rows]

    def per_entity(
        self, kind: EntityKind, metric: str, start: int, end: int, stat: Stat = Stat.p95
    ) -> dict[str, float]:
        check_range(start, end)
        with self._db() as db:
            sids = [i for k, i in self._series.items() if k.kind is kind and k.metric == metric]
            if not sids:
                return {}
            rows = db.execute(
                _per_entity_sql(start >= _horizon(db, 0), stat),
                [min(sids), max(sids), kind.value, metric, start, end],
            )
            return {str(e): float(v) for e, v in rows.fetchall() if v is not None}

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
        with self._db() as db:
            rows = db.execute(
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
        """Let go of the file now rather than after the idle linger."""
        self._file.close()


class MemoryFile:
    """``:memory:``: one connection for the life of the store (no other process can see it)."""

    def __init__(self, prepare: Callable[[Any], None]) -> None:
        import duckdb

        self._conn = duckdb.connect(":memory:")
        self._conn.execute("SET preserve_insertion_order = false")
        prepare(self._conn)
        self._lock = threading.RLock()

    @contextmanager
    def connect(self, write: bool) -> Iterator[Any]:
        with self._lock:
            yield self._conn

    def close(self) -> None:
        """Nothing to let go of: the data lives as long as the store."""


# -- schema and migration ---------------------------------------------------------
#: 2: samples unique per (series, time); files of version 1 are deduplicated on open.
SCHEMA_VERSION = 2


def _prepare(db: Any) -> None:
    """Create the tables, then bring an older file up to ``SCHEMA_VERSION`` in one commit."""
    db.execute(_SCHEMA)
    for r in ROLLUP_RESOLUTIONS:
        db.execute(_ROLLUP_DDL.format(r=r))
    version = _mark(db, "schema")
    if version is not None and version >= SCHEMA_VERSION:
        return
    with _transaction(db):
        dupes = db.execute("SELECT count(*) - count(DISTINCT (sid, ts)) FROM samples").fetchone()
        if dupes and dupes[0]:
            _deduplicate(db)
        _set_mark(db, "schema", SCHEMA_VERSION)


def _deduplicate(db: Any) -> None:
    """Keep one sample per (series, time) and roll up again from the first sample."""
    db.execute(
        """CREATE TEMP TABLE kept AS SELECT sid, ts, arg_max(host, value) AS host,
        max(value) AS value FROM samples GROUP BY sid, ts"""
    )
    db.execute("DELETE FROM samples")
    db.execute("INSERT INTO samples SELECT sid, ts, host, value FROM kept ORDER BY sid, ts")
    db.execute("DROP TABLE kept")
    first = db.execute("SELECT min(ts) FROM samples").fetchone()
    for r in ROLLUP_RESOLUTIONS:
        if first and first[0] is not None:
            _set_mark(db, f"rolled_{r}", align(int(first[0]), r))


# -- statements -------------------------------------------------------------------
@contextmanager
def _transaction(db: Any) -> Iterator[None]:
    """All of the block's statements or none (the connection outlives the block)."""
    db.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _mark(db: Any, name: str) -> int | None:
    row = db.execute("SELECT value FROM marks WHERE name = ?", [name]).fetchone()
    return None if row is None else int(row[0])


def _set_mark(db: Any, name: str, value: int) -> None:
    db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", [name, value])


def _horizon(db: Any, resolution: int) -> int:
    return _mark(db, f"horizon_{resolution}") or 0


def _replace_samples(db: Any, cols: dict[str, Any]) -> None:
    """Delete the stored samples at the batch's (series, time) pairs, then insert the batch.

    The literal id and time bounds let DuckDB skip row groups by their min/max,
    so a collector's batch of one minute reads only the newest row groups.
    """
    sid_lo, sid_hi = int(cols["sid"].min()), int(cols["sid"].max())
    ts_lo, ts_hi = int(cols["ts"].min()), int(cols["ts"].max())
    db.execute(
        f"""DELETE FROM samples USING cols
        WHERE samples.sid BETWEEN {sid_lo} AND {sid_hi} AND samples.ts BETWEEN {ts_lo} AND {ts_hi}
          AND samples.sid = cols.sid AND samples.ts = cols.ts"""
    )
    db.execute("INSERT INTO samples SELECT sid, ts, host, value FROM cols")


def _note_late(db: Any, first_ts: int) -> None:
    """Move each level's watermark back to the oldest written time, so rollups get redone."""
    for r in ROLLUP_RESOLUTIONS:
        wm = _mark(db, f"rolled_{r}")
        if wm is None or first_ts < wm:
            _set_mark(db, f"rolled_{r}", align(first_ts, r))


def _rollup_chunk(db: Any, r: int, upto: int, chunk: int) -> int | None:
    """Roll up the next chunk after the level's watermark; None when there is none."""
    wm = _mark(db, f"rolled_{r}")
    if wm is None:
        return None
    frm = max(wm, align(_horizon(db, 0), r))
    if frm >= upto:
        return None
    hi = min(upto, align(frm, chunk) + chunk)
    with _transaction(db):
        db.execute(f"DELETE FROM rollup_{r} WHERE ts >= ? AND ts < ?", [frm, hi])
        db.execute(
            f"""INSERT INTO rollup_{r}
            SELECT sid, ts - ts % {r} AS b, count(*), min(value), avg(value), max(value),
                   quantile_cont(value, 0.95)
            FROM samples WHERE ts >= ? AND ts < ? GROUP BY sid, b""",
            [frm, hi],
        )
        row = db.execute(f"SELECT count(*) FROM rollup_{r} WHERE ts >= ? AND ts < ?", [frm, hi])
        made = row.fetchone()
        _set_mark(db, f"rolled_{r}", hi)
    return int(made[0]) if made else 0


def _level_for(db: Any, start: int, step: int) -> int | None:
    """None to read raw samples; else the rollup resolution to read (raw aged out)."""
    if start >= _horizon(db, 0):
        return None  # raw data is exact for every stat, and one series reads fast
    usable = [r for r in ROLLUP_RESOLUTIONS if start >= _horizon(db, r)]
    return finest_covering(usable, step)


def _series_raw(db: Any, sid: int, start: int, end: int, step: int, stat: Stat) -> list[Any]:
    return list(
        db.execute(
            f"""SELECT ts - ts % {step} AS b, {_STAT_SQL[stat]} FROM samples
            WHERE sid = ? AND ts >= ? AND ts < ? GROUP BY b ORDER BY b""",
            [sid, start, end],
        ).fetchall()
    )


def _series_rollup(
    db: Any, sid: int, start: int, end: int, step: int, stat: Stat, r: int
) -> list[Any]:
    """Rolled-up buckets before the level's watermark, raw samples after it."""
    wm = _mark(db, f"rolled_{r}") or start
    q = f"""WITH parts AS (
          SELECT ts, n, vmin, vavg, vmax, vp95 FROM rollup_{r}
          WHERE sid = $sid AND ts >= $start AND ts < least($end, $wm)
          UNION ALL
          SELECT ts - ts % {r}, count(*), min(value), avg(value), max(value),
                 quantile_cont(value, 0.95)
          FROM samples WHERE sid = $sid AND ts >= greatest($start, $wm) AND ts < $end
          GROUP BY ts - ts % {r})
        SELECT ts - ts % {step} AS b, {_COMBINE_SQL[stat]} FROM parts GROUP BY b ORDER BY b"""
    return list(db.execute(q, {"sid": sid, "start": start, "end": end, "wm": wm}).fetchall())


def _many_sql(step: int, stat: Stat, level: int | None, lo: int, hi: int) -> str:
    """The ``series_many`` statement: raw buckets, or rollup rows before the level's
    watermark and raw samples after it (as ``_series_rollup``), per wanted series id.

    The literal id range lets DuckDB skip row groups of series outside the chunk.
    """
    ids = f"sid BETWEEN {lo} AND {hi} AND sid IN (SELECT sid FROM want)"
    if level is None:
        return f"""SELECT sid, ts - ts % {step} AS b, {_STAT_SQL[stat]} AS v FROM samples
            WHERE {ids} AND ts >= $start AND ts < $end GROUP BY sid, b"""
    return f"""WITH parts AS (
          SELECT sid, ts, n, vmin, vavg, vmax, vp95 FROM rollup_{level}
          WHERE {ids} AND ts >= $start AND ts < least($end, $wm)
          UNION ALL
          SELECT sid, ts - ts % {level}, count(*), min(value), avg(value), max(value),
                 quantile_cont(value, 0.95)
          FROM samples WHERE {ids} AND ts >= greatest($start, $wm) AND ts < $end
          GROUP BY sid, ts - ts % {level})
        {_many_select(step, stat, level)}"""


def _many_select(step: int, stat: Stat, level: int) -> str:
    """Rollup rows combined per series and bucket; at the level's own step every row is a
    bucket of its own, so the combination is computed per row, with no grouping (the same
    arithmetic on one row, so the same values)."""
    if step != level:
        return f"""SELECT sid, ts - ts % {step} AS b, {_COMBINE_SQL[stat]} AS v FROM parts
        GROUP BY sid, b HAVING v IS NOT NULL"""
    one = _ONE_ROW_SQL[stat]
    return f"SELECT sid, ts AS b, {one} AS v FROM parts WHERE {one} IS NOT NULL"


def _per_entity_sql(raw_kept: bool, stat: Stat) -> str:
    """Raw data while it is kept; else the 5-minute rollup (its averages for p95).

    The explicit id range lets DuckDB skip row groups of other metrics when a
    metric's series were created together (as a backfill does).
    """
    if raw_kept:
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
