"""The diagnosis engine on constructed series whose cause is known: each cause is named, with
the neighbours that cause contention and the date a leak fills memory; a healthy VM has none."""

from __future__ import annotations

import math

import pytest

from corral.engines.diagnosis import Cause, Evidence, Series, diagnose

DAY = 86400
AT = 1_700_000_000.0 - 1_700_000_000.0 % DAY  # midnight UTC: whole days of history before it
STEP = 300


def ramp(before: float, now: float, *, hours: float = 24, window: float = 3600) -> Series:
    """5-minute samples over ``hours`` ending at AT: ``before`` until the last window, then
    ``now``."""
    times = [AT - hours * 3600 + i * STEP for i in range(int(hours * 3600 / STEP))]
    return Series(tuple(times), tuple(now if t >= AT - window else before for t in times))


def quiet_vm(**over: Series) -> dict[str, Series]:
    metrics = {
        "cpu_pct": ramp(20, 20),
        "cpu_wait_pct": ramp(0.5, 0.5),
        "cpu_steal_pct": ramp(0.2, 0.2),
        "mem_used_pct": ramp(50, 50),
        "swap_in_bytes_per_s": ramp(0, 0),
        "swap_out_bytes_per_s": ramp(0, 0),
        "net_rx_bytes_per_s": ramp(1e5, 1e5),
        "net_tx_bytes_per_s": ramp(1e5, 1e5),
    }
    return metrics | over


def test_a_healthy_vm_has_no_finding() -> None:
    d = diagnose(Evidence("vm-a", "kvm-03", AT, quiet_vm(), {"host_iowait_pct": ramp(2, 2)}))
    assert d.findings == () and d.cause is None


def test_contention_names_the_neighbours_whose_cpu_rose() -> None:
    vm = quiet_vm(cpu_wait_pct=ramp(0.5, 25), cpu_steal_pct=ramp(0.2, 10))
    neighbours = {
        "etl-1": ramp(5, 45),  # the batch job that started
        "etl-2": ramp(5, 40),
        "web-1": ramp(10, 11),  # steady: not a cause
        "idle-1": ramp(3, 1),
    }
    d = diagnose(Evidence("vm-a", "kvm-03", AT, vm, neighbours=neighbours))
    assert d.cause is Cause.host_cpu_contention
    top = d.findings[0]
    assert top.culprits == ("etl-1", "etl-2")
    assert top.since == AT - 3600
    assert "35 %" in top.evidence and "etl-1, etl-2" in top.evidence


def test_a_vm_at_its_own_limit_is_its_own_demand_not_contention() -> None:
    d = diagnose(Evidence("vm-a", "kvm-03", AT, quiet_vm(cpu_pct=ramp(30, 97))))
    assert [f.cause for f in d.findings] == [Cause.own_demand]
    assert d.findings[0].culprits == ("vm-a",)


def test_swapping_is_memory_pressure() -> None:
    vm = quiet_vm(swap_in_bytes_per_s=ramp(0, 2 * 1024**2), swap_out_bytes_per_s=ramp(0, 1024**2))
    d = diagnose(Evidence("vm-a", "kvm-03", AT, vm))
    assert d.cause is Cause.memory_pressure
    assert "3.0 MiB/s" in d.findings[0].evidence


def test_host_iowait_is_disk_saturation_and_a_full_nic_is_network_saturation() -> None:
    vm = quiet_vm(net_tx_bytes_per_s=ramp(1e6, 120e6))
    d = diagnose(Evidence("vm-a", "kvm-03", AT, vm, {"host_iowait_pct": ramp(3, 60)}))
    assert [f.cause for f in d.findings] == [Cause.disk_saturation, Cause.network_saturation]
    assert "960 Mbit/s" in d.findings[1].evidence


def test_steady_growth_is_a_leak_with_the_date_memory_runs_out() -> None:
    days = 10
    times = [AT - days * DAY + i * STEP for i in range(days * DAY // STEP)]
    used = [40 + 3 * (t - times[0]) / DAY + 4 * math.sin(t / 3600) for t in times]  # 3 pts/day
    d = diagnose(
        Evidence("vm-a", "kvm-03", AT, quiet_vm(mem_used_pct=Series(tuple(times), tuple(used))))
    )
    leak = next(f for f in d.findings if f.cause is Cause.memory_leak)
    assert leak.severity == pytest.approx(3.0, rel=0.02)
    # 40 % at the start, 3 points a day: 100 % twenty days after the start
    assert leak.exhaustion_at == pytest.approx(times[0] + 20 * DAY, abs=0.5 * DAY)


def test_a_busy_but_flat_memory_is_no_leak() -> None:
    days = 10
    times = [AT - days * DAY + i * STEP for i in range(days * DAY // STEP)]
    used = [70 + 20 * math.sin(t / 7200) for t in times]
    d = diagnose(
        Evidence("vm-a", "kvm-03", AT, quiet_vm(mem_used_pct=Series(tuple(times), tuple(used))))
    )
    assert all(f.cause is not Cause.memory_leak for f in d.findings)
