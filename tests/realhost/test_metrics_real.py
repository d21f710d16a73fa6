"""Metrics from real TCG guests: a guest that burns CPU or writes its disk shows exactly that."""

from __future__ import annotations

import time

import pytest
from guest import GuestFactory

from corral.hypervisor.stats import LibvirtStatsSource
from corral.metrics.collector import Collector
from corral.metrics.model import EntityKind
from corral.metrics.store import open_store

INTERVAL_S = 2.0
CYCLES = 5


def _mean(store: object, uuid: str, metric: str, start: int) -> float | None:
    rows = store.raw(EntityKind.vm, uuid, metric, start, int(time.time()) + 60)  # type: ignore[attr-defined]
    values = [v for _ts, _host, v in rows]
    return sum(values) / len(values) if values else None


@pytest.mark.alone
def test_cpu_and_disk_load_show_in_the_collected_series(
    guest_factory: GuestFactory, realhost_uris: list[str]
) -> None:
    idle = guest_factory(0, load="idle", disk_mib=32, wait_ready=True)
    burner = guest_factory(0, load="cpu", wait_ready=True)
    writer = guest_factory(0, load="disk", disk_mib=64, wait_ready=True)
    store = open_store("duckdb://:memory:")
    collector = Collector(
        LibvirtStatsSource({"real-1": realhost_uris[0]}), store.write, interval_s=INTERVAL_S
    )
    start = int(time.time()) - 1
    try:
        for _ in range(CYCLES):
            report = collector.collect_once()
            assert report.errors == {}
            time.sleep(INTERVAL_S)
        cpu_idle = _mean(store, idle.uuid, "cpu_pct", start)
        cpu_burn = _mean(store, burner.uuid, "cpu_pct", start)
        wr_idle = _mean(store, idle.uuid, "disk_write_bytes_per_s", start)
        wr_busy = _mean(store, writer.uuid, "disk_write_bytes_per_s", start)
    finally:
        collector.close()
        store.close()
    assert cpu_idle is not None and cpu_burn is not None
    assert cpu_burn >= 50.0, f"a guest burning its one vCPU showed only {cpu_burn:.1f} % CPU"
    assert cpu_idle <= 25.0 and cpu_burn >= 4 * max(cpu_idle, 1.0)
    assert wr_busy is not None and wr_busy >= 256 * 1024, f"disk writer showed {wr_busy} B/s"
    assert wr_idle is not None and wr_idle < wr_busy / 20
