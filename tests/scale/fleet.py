"""A scenario fleet written into a real metrics store, and today's per-VM way of reading it.

Why the per-VM reader lives here: it is the reference the chunked, set-based
reads must equal (one ``store.series`` per VM and metric, as the report read
before chunking).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from corral.engines.sprawl import HostRecord, MetricBatch, VMRecord
from corral.engines.sprawl.inventory_file import Inventory
from corral.engines.sprawl.scenario import ScenarioAssumptions, build_fleet
from corral.metrics.model import EntityKind, SampleBatch, SeriesKey
from corral.metrics.store import MetricsStore
from corral.services.records import metric_window

STEP = 300


def scenario(vms: int, seed: int, days: int = 15) -> tuple[Inventory, MetricBatch]:
    """The seeded scenario fleet as fleet records, and its metric history."""
    f = build_fleet(vms, seed, ScenarioAssumptions(days=days))
    return Inventory(f.vms, f.hosts, f.volumes, f.now), f.metrics


def write_history(store: MetricsStore, fleet: Inventory, batch: MetricBatch) -> int:
    """The batch as the collector would have stored it (missing samples are not written)."""
    assert batch.cpu_pct is not None and batch.disk_bytes_s is not None
    assert batch.net_bytes_s is not None
    by_uuid = {vm.uuid: vm for vm in fleet.vms}
    mem_mib = np.array([by_uuid[u].memory_mib for u in batch.vm_uuids], dtype=np.float64)
    mem_pct = batch.memory_mib["rss"] / mem_mib[:, None] * 100.0
    half_disk, half_net = batch.disk_bytes_s / 2, batch.net_bytes_s / 2
    series = {
        "cpu_pct": batch.cpu_pct,
        "disk_read_bytes_per_s": half_disk,
        "disk_write_bytes_per_s": half_disk,
        "net_rx_bytes_per_s": half_net,
        "net_tx_bytes_per_s": batch.net_bytes_s - half_net,
        "mem_used_pct": mem_pct,
    }
    written = 0
    for metric, values in series.items():
        written += store.write(_samples(batch, metric, values.astype(np.float64)))
    return written


def _samples(batch: MetricBatch, metric: str, values: npt.NDArray[np.float64]) -> SampleBatch:
    keys = [SeriesKey(EntityKind.vm, u, metric) for u in batch.vm_uuids]
    rows, cols = np.nonzero(~np.isnan(values))
    return SampleBatch(
        keys,
        ["host-00"],
        rows.astype(np.int64),
        np.zeros(len(rows), dtype=np.int64),
        batch.start + STEP * cols.astype(np.int64),
        values[rows, cols],
    )


def per_vm_batch(
    store: MetricsStore, vms: list[VMRecord], hosts: list[HostRecord], fleet: Inventory, days: int
) -> MetricBatch:
    """Today's read before chunking: six ``series`` queries per VM, one dense row each."""
    assert fleet.now is not None
    start, end = metric_window(fleet.now, days, STEP)
    mhz = {h.name: h.core_mhz or 0.0 for h in hosts}
    n = (end - start) // STEP

    def grid(uuid: str, metric: str) -> npt.NDArray[np.float64]:
        out = np.full(n, np.nan)
        for p in store.series(EntityKind.vm, uuid, metric, start, end, STEP):
            out[(p.ts - start) // STEP] = p.value
        return out

    cpu, disk, net, mem = [], [], [], []
    for v in vms:
        cpu.append(grid(v.uuid, "cpu_pct") / 100.0 * v.vcpus * mhz.get(v.host or "", 0.0))
        disk.append(grid(v.uuid, "disk_read_bytes_per_s") + grid(v.uuid, "disk_write_bytes_per_s"))
        net.append(grid(v.uuid, "net_rx_bytes_per_s") + grid(v.uuid, "net_tx_bytes_per_s"))
        mem.append(grid(v.uuid, "mem_used_pct") / 100.0 * v.memory_mib)

    def stack(rows: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float32]:
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), n)

    return MetricBatch(
        vm_uuids=tuple(v.uuid for v in vms),
        start=start,
        step_s=STEP,
        cpu_mhz=stack(cpu),
        disk_bytes_s=stack(disk),
        net_bytes_s=stack(net),
        memory_mib={"balloon": stack(mem)},
    )
