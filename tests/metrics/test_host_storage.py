"""The collector records what each host's active storage pools hold, beside its CPU and
memory: the history the capacity runway reads storage's own growth from. Real libvirt test
driver hosts (one with a pool, one without)."""

from __future__ import annotations

import threading
from pathlib import Path

import libvirt

from corral.domain.clock import ManualClock
from corral.domain.metrics import EntityKind, SampleBatch
from corral.hypervisor.stats import LibvirtStatsSource
from corral.metrics.collector import Collector

NODES = Path(__file__).parents[1] / "fixtures" / "nodes"


def test_each_host_s_pools_capacity_and_allocation_are_gauges() -> None:
    uris = {"host-a": f"test://{NODES / 'host-a.xml'}", "host-b": f"test://{NODES / 'host-b.xml'}"}
    conn = libvirt.open(uris["host-a"])
    try:
        infos = [p.info() for p in conn.listAllStoragePools()]
    finally:
        conn.close()
    assert infos and all(i[1] > 0 for i in infos)
    batches: list[SampleBatch] = []
    clock = ManualClock()
    source = LibvirtStatsSource(uris, clock=clock)
    try:
        Collector(source, batches.append, interval_s=60, clock=clock).run(
            threading.Event(), cycles=1
        )
    finally:
        source.close()
    got = {
        (s.entity, s.metric): s.value
        for b in batches
        for s in b.to_samples()
        if s.kind is EntityKind.host and s.metric.startswith("host_storage")
    }
    assert got == {
        ("host-a", "host_storage_total_bytes"): float(sum(i[1] for i in infos)),
        ("host-a", "host_storage_used_bytes"): float(sum(i[2] for i in infos)),
    }  # host-b has no pool: nothing is said of its storage
