"""Every store backend against the same cases: write, query, rank, roll up, age out."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from corral.metrics.model import EntityKind, Sample, SampleBatch, SeriesKey, Stat
from corral.metrics.store import DuckDBStore, MetricsStore

VM = EntityKind.vm
DAY = 86400
# Recent whole days: VictoriaMetrics refuses samples outside its retention window.
T0 = int(time.time()) // DAY * DAY - 3 * DAY


def batch_for(
    entities: list[str], metric: str, values: np.ndarray, step: int = 300, host: str = "h1"
) -> SampleBatch:
    """``values[i, j]``: entity i at T0 + j*step."""
    n_e, n_t = values.shape
    keys = [SeriesKey(VM, e, metric) for e in entities]
    return SampleBatch(
        keys,
        [host],
        np.repeat(np.arange(n_e), n_t),
        np.zeros(n_e * n_t, dtype=np.int64),
        np.tile(T0 + step * np.arange(n_t), n_e),
        values.reshape(-1).astype(np.float64),
    )


def test_write_then_raw_keeps_hosts_across_migration(store: MetricsStore) -> None:
    s = [Sample(VM, "u1", "h1", "cpu_pct", T0 + i * 60, float(i)) for i in range(5)]
    s += [Sample(VM, "u1", "h2", "cpu_pct", T0 + i * 60, float(i)) for i in range(5, 10)]
    assert store.write(SampleBatch.from_samples(s)) == 10
    rows = store.raw(VM, "u1", "cpu_pct", T0, T0 + 600)
    assert [r[0] for r in rows] == [T0 + i * 60 for i in range(10)]
    assert [r[1] for r in rows] == ["h1"] * 5 + ["h2"] * 5
    assert [r[2] for r in rows] == [float(i) for i in range(10)]


def test_series_buckets_each_stat_like_numpy(store: MetricsStore) -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 100, size=(1, 48))  # 4 h at 5 min
    store.write(batch_for(["u1"], "cpu_pct", values))
    per_hour = values.reshape(4, 12)
    expect = {
        Stat.avg: per_hour.mean(axis=1),
        Stat.min: per_hour.min(axis=1),
        Stat.max: per_hour.max(axis=1),
        Stat.p95: np.quantile(per_hour, 0.95, axis=1),
    }
    for stat, want in expect.items():
        pts = store.series(VM, "u1", "cpu_pct", T0, T0 + 4 * 3600, 3600, stat)
        assert [p.ts for p in pts] == [T0 + h * 3600 for h in range(4)]
        assert [p.value for p in pts] == pytest.approx(want.tolist()), stat


def test_series_of_unknown_vm_is_empty(store: MetricsStore) -> None:
    assert store.series(VM, "nobody", "cpu_pct", T0, T0 + 3600, 300) == []


def test_gap_stays_a_gap(store: MetricsStore) -> None:
    values = np.ones((1, 36))
    values_b = batch_for(["u1"], "cpu_pct", values)
    keep = (values_b.ts < T0 + 3600) | (values_b.ts >= T0 + 7200)
    store.write(
        SampleBatch(
            values_b.series,
            values_b.hosts,
            values_b.series_idx[keep],
            values_b.host_idx[keep],
            values_b.ts[keep],
            values_b.values[keep],
        )
    )
    pts = store.series(VM, "u1", "cpu_pct", T0, T0 + 3 * 3600, 3600)
    assert [p.ts for p in pts] == [T0, T0 + 7200]


def test_top_and_per_entity_rank_the_fleet(store: MetricsStore) -> None:
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 10, size=(20, 24)) + np.arange(20)[:, None] * 10
    names = [f"vm-{i:02d}" for i in range(20)]
    store.write(batch_for(names, "cpu_wait_pct", values))
    top = store.top(VM, "cpu_wait_pct", T0, T0 + DAY, 3)
    assert [t.entity for t in top] == ["vm-19", "vm-18", "vm-17"]
    assert top[0].value == pytest.approx(values[19].mean())
    p95 = store.per_entity(VM, "cpu_wait_pct", T0, T0 + DAY, Stat.p95)
    assert len(p95) == 20
    assert p95["vm-04"] == pytest.approx(float(np.quantile(values[4], 0.95)))


def test_rollups_agree_with_raw_data(store: MetricsStore) -> None:
    rng = np.random.default_rng(11)
    values = rng.uniform(0, 100, size=(2, 2 * 288))  # 2 days at 5 min, two VMs
    store.write(batch_for(["u1", "u2"], "cpu_pct", values))
    assert store.rollup(T0 + 2 * DAY) > 0
    hourly = store.rollup_rows(3600, VM, "u2", "cpu_pct", T0, T0 + 2 * DAY)
    assert len(hourly) == 48
    blocks = values[1].reshape(48, 12)
    assert [r.count for r in hourly] == [12] * 48
    assert [r.min for r in hourly] == pytest.approx(blocks.min(axis=1).tolist())
    assert [r.avg for r in hourly] == pytest.approx(blocks.mean(axis=1).tolist())
    assert [r.max for r in hourly] == pytest.approx(blocks.max(axis=1).tolist())
    assert [r.p95 for r in hourly] == pytest.approx(np.quantile(blocks, 0.95, axis=1).tolist())
    five = store.rollup_rows(300, VM, "u1", "cpu_pct", T0, T0 + DAY)
    assert [r.avg for r in five] == pytest.approx(values[0, :288].tolist())
    assert {r.count for r in five} == {1}
    daily = store.rollup_rows(86400, VM, "u1", "cpu_pct", T0, T0 + 2 * DAY)
    assert [r.ts for r in daily] == [T0, T0 + DAY]
    assert [r.avg for r in daily] == pytest.approx(values[0].reshape(2, 288).mean(axis=1).tolist())


def test_late_samples_are_rolled_up_again(store: MetricsStore) -> None:
    store.write(batch_for(["u1"], "cpu_pct", np.full((1, 12), 10.0)))
    store.rollup(T0 + 3600)
    late = SampleBatch.from_samples([Sample(VM, "u1", "h1", "cpu_pct", T0 + 1, 130.0)])
    store.write(late)
    store.rollup(T0 + 3600)
    (row,) = store.rollup_rows(3600, VM, "u1", "cpu_pct", T0, T0 + 3600)
    assert row.count == 13
    assert row.max == 130.0


def test_retention_keeps_answers_from_rollups(store: MetricsStore) -> None:
    values = np.arange(2 * 288, dtype=float).reshape(1, -1)
    store.write(batch_for(["u1"], "cpu_pct", values))
    now = T0 + 2 * DAY
    store.rollup(now)
    before = store.series(VM, "u1", "cpu_pct", T0, T0 + DAY, 3600)
    store.retention = type(store.retention)(raw_s=DAY)
    store.apply_retention(now)
    if store.deletes_raw:
        assert store.raw(VM, "u1", "cpu_pct", T0, T0 + DAY) == []
    after = store.series(VM, "u1", "cpu_pct", T0, T0 + DAY, 3600)
    assert [(p.ts, p.value) for p in after] == [(p.ts, pytest.approx(p.value)) for p in before]
    assert len(after) == 24


def test_latest_gives_newest_value_and_host(store: MetricsStore) -> None:
    now = int(time.time())
    s = [
        Sample(VM, "u1", "h1", "cpu_pct", now - 120, 1.0),
        Sample(VM, "u1", "h2", "cpu_pct", now - 60, 2.0),
        Sample(EntityKind.host, "h2", "h2", "host_cpu_pct", now - 60, 30.0),
        Sample(VM, "old", "h1", "cpu_pct", now - 4000, 9.0),
    ]
    store.write(SampleBatch.from_samples(s))
    got = {
        (x.kind, x.entity, x.metric): (x.host, x.ts, x.value)
        for x in store.latest([VM, EntityKind.host], since=now - 600)
    }
    assert got == {
        (VM, "u1", "cpu_pct"): ("h2", now - 60, 2.0),
        (EntityKind.host, "h2", "host_cpu_pct"): ("h2", now - 60, 30.0),
    }


def test_an_older_duckdb_file_with_copies_is_deduplicated_on_open(tmp_path: Path) -> None:
    """A file written before samples were unique: copies dropped, rollups made again."""
    path = tmp_path / "old.duckdb"
    store = DuckDBStore(path)
    store.write(batch_for(["u1"], "cpu_pct", np.full((1, 24), 10.0)))
    store.rollup(T0 + 2 * 3600)
    store.close()
    db = duckdb.connect(str(path))  # as the old code left it: every sample twice, no version
    db.execute("INSERT INTO samples SELECT * FROM samples")
    db.execute("UPDATE rollup_3600 SET n = n * 2")
    db.execute("DELETE FROM marks WHERE name = 'schema'")
    db.close()
    store = DuckDBStore(path)
    try:
        assert len(store.raw(VM, "u1", "cpu_pct", T0, T0 + 7200)) == 24
        store.rollup(T0 + 2 * 3600)
        assert [r.count for r in store.rollup_rows(3600, VM, "u1", "cpu_pct", T0, T0 + 7200)] == [
            12,
            12,
        ]
    finally:
        store.close()
