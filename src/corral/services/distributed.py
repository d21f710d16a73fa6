"""Where the chunks of a fleet-wide analysis run: in this process, or on a Dask cluster.

Why Dask distributed: it is the established Python engine for this shape of
work (independent tasks over numpy arrays), ships pure functions and their plain
arguments by pickling with no glue code, has a scheduler/worker pair that runs
the same on one machine or many, and a local cluster for one machine's cores.

On a cluster each worker reads its chunk's metrics from the store itself (a
``StoreReader``: the store's URL and the window, shipped with the chunk), so the
reads run in parallel and the caller holds no metrics at all. That needs the
store to be reachable from the workers: VictoriaMetrics from anywhere, a DuckDB
file only from workers that see the same path (this machine, or a shared
filesystem; a worker that does not see it fails the run with a clear error). A
store with no URL (DuckDB ``:memory:``) is read here, chunk by chunk, and the
arrays are shipped. Memory stays bounded either way: at most ``inflight`` chunks
are in flight, and a chunk's arrays are let go once its (small) result is back.
Results are merged in chunk order, so the answer does not depend on where chunks
ran.

``scheduler``: None runs in this process; ``local`` or ``local:N`` starts a
cluster of N worker processes on this machine (all cores by default) for the
run; anything else is a scheduler address, e.g. ``tcp://10.0.0.5:8786``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from corral.config import Settings
from corral.engines.sprawl import HostRecord
from corral.engines.sprawl.chunked import (
    ChunkResult,
    ChunkTask,
    FleetPlan,
    analyse_chunk,
    chunk_task,
    chunks,
)
from corral.engines.sprawl.model import MetricBatch, VMRecord
from corral.errors import ConfigError, StoreError
from corral.metrics.store import DuckDBStore, MetricsStore, VictoriaMetricsStore, open_store
from corral.metrics.store.base import ROLLUP_RESOLUTIONS
from corral.services.records import metric_batch

#: Reads one chunk's metrics (None: no metrics store).
ReadChunk = Callable[[Sequence[VMRecord]], MetricBatch | None]


@dataclass(frozen=True)
class AnalysisRun:
    """How a fleet-wide analysis runs: VMs per chunk, where chunks run, the metric step."""

    chunk_size: int = 1000
    scheduler: str | None = None
    step_s: int = 300

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ConfigError(f"analysis_chunk_size must be positive, not {self.chunk_size}.")
        if self.step_s not in ROLLUP_RESOLUTIONS:
            steps = ", ".join(str(r) for r in ROLLUP_RESOLUTIONS)
            raise ConfigError(f"analysis_step_s must be one of {steps}, not {self.step_s}.")

    @classmethod
    def of(cls, settings: Settings) -> AnalysisRun:
        return cls(
            chunk_size=settings.analysis_chunk_size,
            scheduler=settings.analysis_scheduler or None,
            step_s=settings.analysis_step_s,
        )


@dataclass(frozen=True)
class StoreReader:
    """Reads a chunk's metrics from the store at ``url``, in whichever process runs it."""

    url: str
    now: datetime
    days: int
    step_s: int

    @classmethod
    def of(cls, store: MetricsStore, now: datetime, days: int, step_s: int) -> StoreReader | None:
        """A reader of ``store`` for other processes, or None when it has no URL. A DuckDB
        file is let go here, so the workers' read-only connections are not locked out."""
        if isinstance(store, VictoriaMetricsStore):
            return cls(f"victoriametrics+{store.url}", now, days, step_s)
        if isinstance(store, DuckDBStore) and store.path != ":memory:":
            store.close()
            return cls(f"duckdb://{Path(store.path).resolve()}", now, days, step_s)
        return None

    def read(self, vms: Sequence[VMRecord], hosts: Sequence[HostRecord]) -> MetricBatch:
        return metric_batch(
            _store(self.url), list(vms), list(hosts), self.now, self.days, self.step_s
        )


def read_and_analyse(reader: StoreReader, task: ChunkTask) -> ChunkResult:
    """The task a worker runs: read the chunk's metrics, then analyse the chunk."""
    return analyse_chunk(replace(task, metrics=reader.read(task.vms, task.hosts)))


_stores: dict[str, MetricsStore] = {}


def _store(url: str) -> MetricsStore:
    """This process's store for ``url``, opened once (a worker serves many chunks)."""
    if url not in _stores:
        path = url.removeprefix("duckdb://")
        if path != url and not Path(path).is_file():
            raise StoreError(
                f"the metrics file {path} is not visible on this Dask worker; run the workers "
                "where the file is (or on a shared filesystem), or use VictoriaMetrics."
            )
        store = _stores[url] = open_store(url)
        if isinstance(store, DuckDBStore):
            store.close()  # opening prepared the file read-write; read it read-only from now
    return _stores[url]


def run_chunks(
    plan: FleetPlan, read: ReadChunk, run: AnalysisRun, remote: StoreReader | None = None
) -> list[ChunkResult]:
    """Every chunk of ``plan.vms`` analysed, in chunk order; on a cluster the workers read
    their chunks through ``remote`` when given, else ``read`` runs here."""
    parts = chunks(plan.vms, run.chunk_size)
    if run.scheduler is None:
        return [analyse_chunk(chunk_task(plan, part, read(part))) for part in parts]
    with _client(run.scheduler) as client:
        return _on_cluster(client, plan, parts, read, remote)


def _on_cluster(
    client: Any,
    plan: FleetPlan,
    parts: Sequence[Sequence[VMRecord]],
    read: ReadChunk,
    remote: StoreReader | None,
) -> list[ChunkResult]:
    """Submit chunks in order, keeping at most two per worker thread in flight (the oldest is
    collected first: chunks are alike in size, so it is usually done first too)."""
    inflight = max(2, 2 * sum(client.nthreads().values()))
    results: list[ChunkResult] = []
    pending: deque[Any] = deque()
    for part in parts:
        if remote is not None:
            task = chunk_task(plan, part, None)
            pending.append(client.submit(read_and_analyse, remote, task, pure=False))
        else:
            [task] = client.scatter([chunk_task(plan, part, read(part))])
            pending.append(client.submit(analyse_chunk, task, pure=False))
        if len(pending) >= inflight:
            results.append(pending.popleft().result())
    results += [fut.result() for fut in pending]
    return results


@contextmanager
def _client(scheduler: str) -> Iterator[Any]:
    """A client of the named scheduler, or of a local cluster started for this run."""
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler == "local" or scheduler.startswith("local:"):
            workers = int(scheduler.partition(":")[2] or os.cpu_count() or 1)
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
        else:
            client = Client(  # type: ignore[no-untyped-call]
                scheduler, timeout="10s", set_as_default=False
            )
    except ValueError as exc:
        raise ConfigError(f"analysis_scheduler {scheduler!r} is not usable: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"the Dask scheduler at {scheduler} is unreachable ({exc}); start it, "
            "or unset analysis_scheduler to analyse in this process."
        ) from None
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()


__all__ = ["AnalysisRun", "ReadChunk", "StoreReader", "read_and_analyse", "run_chunks"]
