"""Counters to rates: a pure engine with a small memory of the last reading.

Rules, in the order they matter to later analysis:

* A counter that went down (the VM restarted, or its QEMU process was
  replaced by a migration) gives no rate for that interval: Corral does not
  guess how much ran before the reset. The next interval is normal again.
* A VM is remembered by its UUID, not by (host, UUID): after a migration its
  series continues, only the ``host`` label changes.
* An interval longer than ``max_gap_s`` (the host did not answer for a while)
  gives no rate either: a gap stays a gap, never an average smeared over it,
  and never zeros.
* Gauges (balloon memory, host memory) need no previous reading.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from corral.metrics.model import DomainCounters, EntityKind, HostCounters, HostSample, Sample

KIB = 1024
_NS = 1e9


def counter_delta(prev: int | None, cur: int | None) -> int | None:
    """The increase of a counter, or None when unknown or reset."""
    if prev is None or cur is None or cur < prev:
        return None
    return cur - prev


def _per_s(prev: int | None, cur: int | None, dt: float, scale: float = 1.0) -> float | None:
    d = counter_delta(prev, cur)
    return None if d is None else d * scale / dt


def _pct_of(prev: int | None, cur: int | None, dt: float, capacity: int) -> float | None:
    d = counter_delta(prev, cur)
    if d is None or capacity <= 0:
        return None
    return 100.0 * d / (dt * _NS * capacity)


def domain_rates(
    prev: DomainCounters, cur: DomainCounters, dt: float, host_cpus: int
) -> dict[str, float]:
    """Rates of one VM over ``dt`` seconds; metrics without both readings are left out."""
    vals: dict[str, float | None] = {
        "cpu_pct": _pct_of(prev.cpu_time_ns, cur.cpu_time_ns, dt, cur.vcpus),
        "cpu_host_pct": _pct_of(prev.cpu_time_ns, cur.cpu_time_ns, dt, host_cpus),
        "cpu_wait_pct": _pct_of(prev.vcpu_wait_ns, cur.vcpu_wait_ns, dt, cur.vcpus),
        "cpu_steal_pct": _pct_of(prev.vcpu_delay_ns, cur.vcpu_delay_ns, dt, cur.vcpus),
        "disk_read_bytes_per_s": _per_s(prev.disk_rd_bytes, cur.disk_rd_bytes, dt),
        "disk_write_bytes_per_s": _per_s(prev.disk_wr_bytes, cur.disk_wr_bytes, dt),
        "disk_read_iops": _per_s(prev.disk_rd_reqs, cur.disk_rd_reqs, dt),
        "disk_write_iops": _per_s(prev.disk_wr_reqs, cur.disk_wr_reqs, dt),
        "net_rx_bytes_per_s": _per_s(prev.net_rx_bytes, cur.net_rx_bytes, dt),
        "net_tx_bytes_per_s": _per_s(prev.net_tx_bytes, cur.net_tx_bytes, dt),
        "net_rx_packets_per_s": _per_s(prev.net_rx_pkts, cur.net_rx_pkts, dt),
        "net_tx_packets_per_s": _per_s(prev.net_tx_pkts, cur.net_tx_pkts, dt),
        "swap_in_bytes_per_s": _per_s(prev.swap_in_kib, cur.swap_in_kib, dt, KIB),
        "swap_out_bytes_per_s": _per_s(prev.swap_out_kib, cur.swap_out_kib, dt, KIB),
    }
    return {k: v for k, v in vals.items() if v is not None}


def domain_gauges(cur: DomainCounters) -> dict[str, float]:
    """Balloon memory of one VM, where the driver reports it."""
    vals: dict[str, float] = {}
    for metric, kib in (
        ("mem_actual_bytes", cur.balloon_actual_kib),
        ("mem_available_bytes", cur.balloon_available_kib),
        ("mem_unused_bytes", cur.balloon_unused_kib),
        ("mem_rss_bytes", cur.balloon_rss_kib),
    ):
        if kib is not None:
            vals[metric] = float(kib * KIB)
    avail, unused = cur.balloon_available_kib, cur.balloon_unused_kib
    if avail and unused is not None:
        vals["mem_used_pct"] = 100.0 * (avail - unused) / avail
    return vals


def host_rates(prev: HostCounters, cur: HostCounters) -> dict[str, float]:
    """Host CPU shares over the interval, from its cumulative CPU-state times."""
    parts = ("cpu_user_ns", "cpu_kernel_ns", "cpu_idle_ns", "cpu_iowait_ns")
    deltas = [counter_delta(getattr(prev, p), getattr(cur, p)) for p in parts]
    if any(d is None for d in deltas[:3]):
        return {}
    user, kernel, idle = (d or 0 for d in deltas[:3])
    iowait = deltas[3] or 0
    total = user + kernel + idle + iowait
    if total <= 0:
        return {}
    out = {"host_cpu_pct": 100.0 * (user + kernel) / total}
    if deltas[3] is not None:
        out["host_iowait_pct"] = 100.0 * iowait / total
    return out


def host_gauges(cur: HostCounters) -> dict[str, float]:
    out = {}
    if cur.storage_total_bytes is not None:
        out["host_storage_total_bytes"] = float(cur.storage_total_bytes)
    if cur.storage_used_bytes is not None:
        out["host_storage_used_bytes"] = float(cur.storage_used_bytes)
    if not cur.mem_total_kib:
        return out
    out["host_mem_total_bytes"] = float(cur.mem_total_kib * KIB)
    if cur.mem_free_kib is not None and cur.mem_free_kib > 0:
        used = cur.mem_total_kib - cur.mem_free_kib
        out["host_mem_used_bytes"] = float(used * KIB)
        out["host_mem_used_pct"] = 100.0 * used / cur.mem_total_kib
    return out


@dataclass(slots=True)
class _Seen:
    ts: float
    counters: DomainCounters


class RateTracker:
    """Remembers the last reading of every VM (by UUID) and host; turns readings into samples."""

    def __init__(self, max_gap_s: float = 900.0) -> None:
        self.max_gap_s = max_gap_s
        self._vms: dict[str, _Seen] = {}
        self._hosts: dict[str, tuple[float, HostCounters]] = {}

    def update(self, reading: HostSample) -> list[Sample]:
        """Samples for one host's reading, stamped with the reading's time (whole seconds)."""
        return list(self._host_samples(reading)) + list(self._vm_samples(reading))

    def _fresh(self, prev_ts: float, ts: float) -> float | None:
        dt = ts - prev_ts
        return dt if 0 < dt <= self.max_gap_s else None

    def _host_samples(self, r: HostSample) -> Iterator[Sample]:
        ts = int(r.ts)
        values = host_gauges(r.node)
        prev = self._hosts.get(r.host)
        if prev is not None and self._fresh(prev[0], r.ts) is not None:
            values.update(host_rates(prev[1], r.node))
        self._hosts[r.host] = (r.ts, r.node)
        for metric, v in values.items():
            yield Sample(EntityKind.host, r.host, r.host, metric, ts, v)

    def _vm_samples(self, r: HostSample) -> Iterator[Sample]:
        ts = int(r.ts)
        for dom in r.domains:
            values = domain_gauges(dom)
            prev = self._vms.get(dom.uuid)
            dt = None if prev is None else self._fresh(prev.ts, r.ts)
            if prev is not None and dt is not None:
                values.update(domain_rates(prev.counters, dom, dt, r.node.cpus))
            self._vms[dom.uuid] = _Seen(r.ts, dom)
            for metric, v in values.items():
                yield Sample(EntityKind.vm, dom.uuid, r.host, metric, ts, v)

    def forget(self, uuid: str) -> None:
        """Drop a VM's last reading (it was shut off: its counters restart)."""
        self._vms.pop(uuid, None)
