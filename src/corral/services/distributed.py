"""Where the chunks of a fleet-wide analysis run: in this process, or on a Dask cluster.

Why Dask distributed: it is the established Python engine for this shape of
work (independent tasks over numpy arrays), ships pure functions and their plain
arguments by pickling with no glue code, has a scheduler/worker pair that runs
the same on one machine or many, and a local cluster for one machine's cores.

The chunks' metrics are read here, in the caller's process, one chunk at a
time; a worker only computes (``analyse_chunk`` on plain data), so workers need
Corral installed but no access to the inventory database or the metrics store.
Memory stays bounded: at most ``inflight`` chunks are read and not yet analysed,
and a chunk's arrays are let go once its (small) result is back. Results are
merged in chunk order, so the answer does not depend on where chunks ran.

``scheduler``: None runs in this process; ``local`` or ``local:N`` starts a
cluster of N worker processes on this machine (all cores by default) for the
run; anything else is a scheduler address, e.g. ``tcp://10.0.0.5:8786``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from corral.config import Settings
from corral.engines.sprawl.chunked import (
    ChunkResult,
    FleetPlan,
    analyse_chunk,
    chunk_task,
    chunks,
)
from corral.engines.sprawl.model import MetricBatch, VMRecord
from corral.errors import ConfigError
from corral.metrics.store.base import ROLLUP_RESOLUTIONS

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


def run_chunks(plan: FleetPlan, read: ReadChunk, run: AnalysisRun) -> list[ChunkResult]:
    """Every chunk of ``plan.vms`` analysed, in chunk order."""
    parts = chunks(plan.vms, run.chunk_size)
    if run.scheduler is None:
        return [analyse_chunk(chunk_task(plan, part, read(part))) for part in parts]
    with _client(run.scheduler) as client:
        return _on_cluster(client, plan, parts, read)


def _on_cluster(
    client: Any, plan: FleetPlan, parts: Sequence[Sequence[VMRecord]], read: ReadChunk
) -> list[ChunkResult]:
    """Submit chunks as they are read, keeping at most two per worker thread in flight (the
    oldest is collected first: chunks are alike in size, so it is usually done first too)."""
    inflight = max(2, 2 * sum(client.nthreads().values()))
    results: list[ChunkResult] = []
    pending: deque[Any] = deque()
    for part in parts:
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


__all__ = ["AnalysisRun", "ReadChunk", "run_chunks"]
