"""The sprawl analysis in chunks equals the whole-fleet analysis, read set-based per chunk."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.costing import load_cost_model
from corral.engines.sprawl import Category, analyse
from corral.engines.sprawl.chunked import analyse_chunk, chunk_task, chunks, merge, plan_fleet
from corral.metrics.model import EntityKind, Stat
from corral.metrics.store import DuckDBStore, MetricsStore
from corral.metrics.store.base import SeriesColumns
from corral.services import sprawl
from corral.services.distributed import AnalysisRun
from corral.services.records import SPRAWL_METRICS
from tests.scale.fleet import per_vm_batch, scenario, write_history

DAYS = 15
MODEL = load_cost_model()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), vms=st.integers(1, 40), size=st.integers(1, 45))
def test_any_chunking_of_the_engine_equals_one_whole_fleet_run(
    seed: int, vms: int, size: int
) -> None:
    fleet, batch = scenario(vms, seed, DAYS)
    assert fleet.now is not None
    whole = analyse(
        fleet.vms, fleet.now, MODEL, hosts=fleet.hosts, volumes=fleet.volumes, metrics=batch
    )
    plan = plan_fleet(fleet.vms, fleet.now, MODEL, hosts=fleet.hosts, volumes=fleet.volumes)
    parts = chunks(plan.vms, size)
    results = [
        analyse_chunk(chunk_task(plan, part, batch.take([vm.uuid for vm in part])))
        for part in parts
    ]
    assert merge(plan, results) == whole


class Counting:
    """The real store, noting how many entities each set-based read asked for."""

    def __init__(self, store: MetricsStore) -> None:
        self.store = store
        self.reads: list[int] = []
        self.single_reads = 0

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
        self.reads.append(len(entities))
        return self.store.series_many(kind, entities, metrics, start, end, step, stat)

    def __getattr__(self, name: str) -> object:
        if name == "series":
            self.single_reads += 1
        return getattr(self.store, name)


def test_the_live_analysis_in_chunks_equals_todays_whole_fleet_run(store: MetricsStore) -> None:
    fleet, batch = scenario(20, seed=7, days=DAYS)
    assert write_history(store, fleet, batch) > 0
    vms, hosts = list(fleet.vms), list(fleet.hosts)
    assert fleet.now is not None
    reference = analyse(
        vms,
        fleet.now,
        MODEL,
        hosts=hosts,
        volumes=fleet.volumes,
        metrics=per_vm_batch(store, vms, hosts, fleet, DAYS),
    )
    found = {f.category for f in reference.findings}
    assert Category.idle in found and len(found) >= 4
    assert any(r.oversized for r in reference.rightsizing)
    for size in (1, 7, len(vms)):
        counting = Counting(store)
        run = AnalysisRun(chunk_size=size)
        chunked = sprawl.fleet_analysis(fleet, counting, MODEL, days=DAYS, run=run)  # type: ignore[arg-type]
        assert chunked == reference, f"chunk size {size}"
        n_chunks = -(-len(vms) // size)
        # one set-based read per chunk, for all six metrics, never a read per VM
        assert counting.reads == [min(size, len(vms) - i * size) for i in range(n_chunks)]
        assert counting.single_reads == 0


def test_series_many_answers_what_series_answers(store: MetricsStore) -> None:
    fleet, batch = scenario(6, seed=3, days=DAYS)
    write_history(store, fleet, batch)
    known = [vm.uuid for vm in fleet.vms]
    # 400 unknown ids after the known ones: VictoriaMetrics must split the id list (its query
    # length limit), DuckDB must leave them out
    ids = known + [str(uuid.UUID(int=i)) for i in range(400)]
    start, end = batch.start, batch.end
    for step, stat in ((300, Stat.avg), (3600, Stat.max), (86400, Stat.avg)):
        cols = store.series_many(EntityKind.vm, ids, SPRAWL_METRICS, start, end, step, stat)
        got = {
            (cols.entities[e], cols.metrics[m], int(t)): v
            for e, m, t, v in zip(cols.entity, cols.metric, cols.ts, cols.value, strict=True)
        }
        want = {
            (u, metric, p.ts): p.value
            for u in known
            for metric in SPRAWL_METRICS
            for p in store.series(EntityKind.vm, u, metric, start, end, step, stat)
        }
        assert len(want) > 0
        assert got.keys() == want.keys()
        assert all(got[k] == pytest.approx(want[k], rel=1e-12) for k in want)


def test_series_many_reads_rollups_once_raw_data_aged_out(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = DuckDBStore(tmp_path / "m.duckdb")
    fleet, batch = scenario(5, seed=4, days=DAYS)
    write_history(store, fleet, batch)
    store.rollup(batch.end)
    store.retention = type(store.retention)(raw_s=2 * 86400)
    store.apply_retention(batch.end)
    ids = [vm.uuid for vm in fleet.vms]
    cols = store.series_many(EntityKind.vm, ids, ("cpu_pct",), batch.start, batch.end, 3600)
    hourly = {
        (cols.entities[e], int(t)): v
        for e, t, v in zip(cols.entity, cols.ts, cols.value, strict=True)
    }
    want = {
        (u, p.ts): p.value
        for u in ids
        for p in store.series(EntityKind.vm, u, "cpu_pct", batch.start, batch.end, 3600)
    }
    assert len(want) > 24 * (DAYS - 3)  # days of rollups, not only the raw days kept
    assert hourly.keys() == want.keys()
    assert all(hourly[k] == pytest.approx(want[k], rel=1e-12) for k in want)
    store.close()


def test_chunk_size_and_step_are_checked() -> None:
    from corral.errors import ConfigError

    with pytest.raises(ConfigError, match="analysis_step_s"):
        AnalysisRun(step_s=600)
    with pytest.raises(ConfigError, match="analysis_chunk_size"):
        AnalysisRun(chunk_size=0)
