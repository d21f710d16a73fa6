"""Counters to rates: the pure engine, on readings built as plain data."""

from __future__ import annotations

import pytest

from corral.metrics.model import DomainCounters, EntityKind, HostCounters, HostSample
from corral.metrics.rates import RateTracker, counter_delta, domain_rates, host_rates

NS = 1_000_000_000
UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def dom(cpu_s: float, **kw: int) -> DomainCounters:
    return DomainCounters(uuid=UUID, name="web1", vcpus=2, cpu_time_ns=int(cpu_s * NS), **kw)


def reading(host: str, ts: float, *domains: DomainCounters, cpus: int = 8) -> HostSample:
    return HostSample(host, ts, HostCounters(cpus=cpus, mem_total_kib=1024), tuple(domains))


def vm_values(samples: list, metric: str) -> list[tuple[int, str, float]]:
    return [
        (s.ts, s.host, s.value) for s in samples if s.kind is EntityKind.vm and s.metric == metric
    ]


def test_counter_delta_refuses_resets_and_unknowns() -> None:
    assert counter_delta(10, 25) == 15
    assert counter_delta(25, 10) is None
    assert counter_delta(None, 10) is None


def test_cpu_time_to_vcpu_and_host_share() -> None:
    # 1 s of CPU time per 1 s on a 2-vCPU VM = 50 % of its vCPUs, 12.5 % of an 8-CPU host.
    r = domain_rates(dom(100), dom(160), 60.0, host_cpus=8)
    assert r["cpu_pct"] == pytest.approx(50.0)
    assert r["cpu_host_pct"] == pytest.approx(12.5)


def test_disk_net_swap_and_contention_rates() -> None:
    a = dom(
        0,
        disk_rd_bytes=0,
        disk_wr_reqs=0,
        net_tx_pkts=0,
        swap_in_kib=0,
        vcpu_wait_ns=0,
        vcpu_delay_ns=0,
    )
    b = dom(
        0,
        disk_rd_bytes=10_000,
        disk_wr_reqs=50,
        net_tx_pkts=300,
        swap_in_kib=10,
        vcpu_wait_ns=NS,
        vcpu_delay_ns=NS // 2,
    )
    r = domain_rates(a, b, 10.0, host_cpus=4)
    assert r["disk_read_bytes_per_s"] == 1000
    assert r["disk_write_iops"] == 5
    assert r["net_tx_packets_per_s"] == 30
    assert r["swap_in_bytes_per_s"] == 1024
    assert r["cpu_wait_pct"] == pytest.approx(5.0)  # 1 s over 10 s x 2 vCPUs
    assert r["cpu_steal_pct"] == pytest.approx(2.5)
    assert "net_rx_bytes_per_s" not in r  # not reported: left out, not zero


def test_host_cpu_share_from_state_times() -> None:
    a = HostCounters(cpus=4, cpu_user_ns=0, cpu_kernel_ns=0, cpu_idle_ns=0, cpu_iowait_ns=0)
    b = HostCounters(cpus=4, cpu_user_ns=30, cpu_kernel_ns=10, cpu_idle_ns=50, cpu_iowait_ns=10)
    r = host_rates(a, b)
    assert r["host_cpu_pct"] == pytest.approx(40.0)
    assert r["host_iowait_pct"] == pytest.approx(10.0)


def test_reset_gives_no_rate_for_that_interval_then_resumes() -> None:
    t = RateTracker(max_gap_s=300)
    out = []
    for ts, cpu in ((0, 500), (60, 560), (120, 2), (180, 62)):  # VM restarted before ts=120
        out += t.update(reading("h1", ts, dom(cpu)))
    cpu = vm_values(out, "cpu_pct")
    assert [ts for ts, _, _ in cpu] == [60, 180]
    assert all(v == pytest.approx(50.0) for _, _, v in cpu)


def test_migration_continues_series_under_uuid_with_new_host_label() -> None:
    t = RateTracker(max_gap_s=300)
    out = []
    out += t.update(reading("h1", 0, dom(0)))
    out += t.update(reading("h1", 60, dom(60)))
    out += t.update(reading("h2", 120, dom(120), cpus=4))  # moved; counter kept growing
    out += t.update(reading("h2", 180, dom(1)))  # new QEMU process: counter restarted
    out += t.update(reading("h2", 240, dom(61), cpus=4))
    cpu = vm_values(out, "cpu_pct")
    assert [(ts, h) for ts, h, _ in cpu] == [(60, "h1"), (120, "h2"), (240, "h2")]
    host_share = vm_values(out, "cpu_host_pct")
    assert host_share[1][2] == pytest.approx(25.0)  # 1 CPU of a 4-CPU host


def test_unreachable_host_is_a_gap_not_zeros() -> None:
    t = RateTracker(max_gap_s=150)
    out = []
    out += t.update(reading("h1", 0, dom(0)))
    out += t.update(reading("h1", 60, dom(30)))
    # no readings at 120..540: the host did not answer
    out += t.update(reading("h1", 600, dom(330)))
    out += t.update(reading("h1", 660, dom(360)))
    cpu = vm_values(out, "cpu_pct")
    assert [ts for ts, _, _ in cpu] == [60, 660]
    assert all(v > 0 for _, _, v in cpu)


def test_balloon_gauges_need_no_previous_reading() -> None:
    t = RateTracker()
    d = DomainCounters(
        UUID,
        "web1",
        2,
        balloon_actual_kib=1024,
        balloon_available_kib=1000,
        balloon_unused_kib=250,
        balloon_rss_kib=512,
    )
    out = t.update(reading("h1", 0, d))
    assert vm_values(out, "mem_actual_bytes") == [(0, "h1", 1024 * 1024.0)]
    assert vm_values(out, "mem_used_pct") == [(0, "h1", 75.0)]
    assert vm_values(out, "cpu_pct") == []
