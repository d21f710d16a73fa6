"""The collector against libvirt's own test driver: real connections, no mocks of libvirt."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from corral.hypervisor.stats import LibvirtStatsSource
from corral.metrics.clock import ManualClock
from corral.metrics.collector import Collector
from corral.metrics.model import EntityKind, Sample, SampleBatch

NODE = Path(__file__).parent / "data" / "node-two-vms.xml"
WEB1 = "11111111-2222-3333-4444-000000000001"
DB1 = "11111111-2222-3333-4444-000000000002"
OFF1 = "11111111-2222-3333-4444-000000000003"


class Recorder:
    """A sink keeping every sample the collector hands over."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def __call__(self, batch: SampleBatch) -> int:
        self.samples.extend(batch.to_samples())
        return len(batch)

    def of(self, kind: EntityKind, entity: str, metric: str) -> list[Sample]:
        return [s for s in self.samples if (s.kind, s.entity, s.metric) == (kind, entity, metric)]


@pytest.fixture
def silent_host() -> Iterator[int]:
    """A TCP port that accepts libvirt's connection and never answers: a hung host."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def test_two_cycles_give_rates_for_running_vms_only() -> None:
    clock = ManualClock()
    src = LibvirtStatsSource({"node-a": f"test://{NODE}"}, clock=clock)
    sink = Recorder()
    col = Collector(src, sink, interval_s=60, clock=clock)
    try:
        col.run(threading.Event(), cycles=2)
    finally:
        col.close()
        src.close()
    vms = {s.entity for s in sink.samples if s.kind is EntityKind.vm}
    assert vms == {WEB1, DB1}  # the shut-off VM gives nothing
    for uuid in (WEB1, DB1):
        cpu = sink.of(EntityKind.vm, uuid, "cpu_pct")
        assert [s.ts for s in cpu] == [int(clock.now())]  # a rate needs two readings
        assert cpu[0].value >= 0 and cpu[0].host == "node-a"
    assert sink.of(EntityKind.vm, WEB1, "disk_read_bytes_per_s")  # per-domain blockStats
    assert sink.of(EntityKind.vm, WEB1, "net_rx_bytes_per_s")  # per-domain interfaceStats
    assert not sink.of(EntityKind.vm, DB1, "disk_read_bytes_per_s")  # no disk: left out
    assert sink.of(EntityKind.host, "node-a", "host_mem_total_bytes")[0].value == 16 * 2**30
    up = sink.of(EntityKind.collector, "node-a", "collect_up")
    assert [s.value for s in up] == [1.0, 1.0]


def test_open_connection_is_accepted_as_is() -> None:
    conn = libvirt.open("test:///default")
    src = LibvirtStatsSource({"default": conn})
    reading = src.read("default")
    assert reading.host == "default"
    assert [d.name for d in reading.domains] == ["test"]
    assert reading.domains[0].cpu_time_ns is not None
    src.close()
    assert conn.isAlive()  # not ours to close
    conn.close()


def test_dead_and_hung_hosts_are_gaps_and_do_not_delay_others(
    silent_host: int, tmp_path: Path
) -> None:
    node_b = tmp_path / "node-b.xml"  # the same host shape with other VM UUIDs
    node_b.write_text(NODE.read_text().replace("-000000000", "-00000000b"))
    clock = ManualClock()
    src = LibvirtStatsSource(
        {
            "node-a": f"test://{NODE}",
            "node-b": f"test://{node_b}",
            "refused": "qemu+tcp://127.0.0.1:1/system",
            "hung": f"qemu+tcp://127.0.0.1:{silent_host}/system",
        },
        clock=clock,
    )
    sink = Recorder()
    col = Collector(src, sink, interval_s=60, timeout_s=1.5, clock=clock)
    try:
        first = col.collect_once()
        clock.advance(60)
        second = col.collect_once()
    finally:
        col.close()
        src.close()
    assert set(first.per_host) == {"node-a", "node-b"}
    assert set(first.errors) == {"refused", "hung"}
    assert "no answer within" in first.errors["hung"]
    assert "previous read" in second.errors["hung"]  # still hanging: skipped, not stacked
    assert {s.host for s in sink.samples if s.kind is EntityKind.vm} == {"node-a", "node-b"}
    down = sink.of(EntityKind.collector, "refused", "collect_up")
    assert [s.value for s in down] == [0.0, 0.0]
    errors = sink.of(EntityKind.collector, "hung", "collect_errors_total")
    assert [s.value for s in errors] == [1.0, 2.0]


def test_bulk_record_with_every_documented_group() -> None:
    """A getAllDomainStats record as libvirt documents it for QEMU guests (keys, not values)."""
    from corral.hypervisor.stats import counters_from_bulk

    record = {
        "state.state": 1,
        "cpu.time": 5_000_000_000,
        "vcpu.current": 2,
        "vcpu.maximum": 2,
        "vcpu.0.time": 1,
        "vcpu.0.wait": 300,
        "vcpu.0.delay": 70,
        "vcpu.1.wait": 200,
        "vcpu.1.delay": 30,
        "block.count": 2,
        "block.0.rd.bytes": 1000,
        "block.1.rd.bytes": 24,
        "block.0.wr.reqs": 5,
        "block.1.wr.reqs": 6,
        "net.count": 1,
        "net.0.rx.bytes": 77,
        "net.0.tx.pkts": 3,
        "balloon.current": 1048576,
        "balloon.available": 1000000,
        "balloon.unused": 400000,
        "balloon.rss": 900000,
        "balloon.swap_in": 12,
    }
    c = counters_from_bulk(WEB1, "web-1", 1, record)
    assert (c.vcpus, c.cpu_time_ns, c.vcpu_wait_ns, c.vcpu_delay_ns) == (2, 5_000_000_000, 500, 100)
    assert (c.disk_rd_bytes, c.disk_wr_reqs, c.disk_wr_bytes) == (1024, 11, None)
    assert (c.net_rx_bytes, c.net_tx_pkts, c.net_tx_bytes) == (77, 3, None)
    assert (c.balloon_actual_kib, c.balloon_unused_kib, c.swap_in_kib, c.swap_out_kib) == (
        1048576,
        400000,
        12,
        None,
    )
