"""Every metric Corral stores, with its unit and where it comes from.

VM metrics are measured from the hypervisor, never from inside the guest.
Contention is read from libvirt's per-vCPU bulk stats: ``vcpu.N.wait`` (time
the vCPU wanted to run while the host ran something else) and
``vcpu.N.delay`` (time the vCPU thread sat in the host run queue; the guest
sees it as steal time).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.metrics.model import EntityKind


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    kind: EntityKind
    unit: str
    help: str


_VM = EntityKind.vm
_HOST = EntityKind.host
_COLL = EntityKind.collector

METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("cpu_pct", _VM, "percent", "CPU time as a share of the VM's vCPUs (100 = all busy)"),
    MetricInfo("cpu_host_pct", _VM, "percent", "CPU time as a share of all host CPUs"),
    MetricInfo("cpu_wait_pct", _VM, "percent", "vcpu.N.wait: vCPUs ready but host busy"),
    MetricInfo("cpu_steal_pct", _VM, "percent", "vcpu.N.delay: vCPU thread queued on host"),
    MetricInfo("disk_read_bytes_per_s", _VM, "bytes/s", "disk bytes read, all disks"),
    MetricInfo("disk_write_bytes_per_s", _VM, "bytes/s", "disk bytes written, all disks"),
    MetricInfo("disk_read_iops", _VM, "ops/s", "disk read requests, all disks"),
    MetricInfo("disk_write_iops", _VM, "ops/s", "disk write requests, all disks"),
    MetricInfo("net_rx_bytes_per_s", _VM, "bytes/s", "bytes received, all NICs"),
    MetricInfo("net_tx_bytes_per_s", _VM, "bytes/s", "bytes sent, all NICs"),
    MetricInfo("net_rx_packets_per_s", _VM, "packets/s", "packets received, all NICs"),
    MetricInfo("net_tx_packets_per_s", _VM, "packets/s", "packets sent, all NICs"),
    MetricInfo("mem_actual_bytes", _VM, "bytes", "balloon: memory the guest currently has"),
    MetricInfo("mem_available_bytes", _VM, "bytes", "balloon: memory the guest OS sees"),
    MetricInfo("mem_unused_bytes", _VM, "bytes", "balloon: memory the guest leaves unused"),
    MetricInfo("mem_rss_bytes", _VM, "bytes", "host memory backing the VM (RSS)"),
    MetricInfo("mem_used_pct", _VM, "percent", "(available - unused) / available"),
    MetricInfo("swap_in_bytes_per_s", _VM, "bytes/s", "balloon: guest swap-in"),
    MetricInfo("swap_out_bytes_per_s", _VM, "bytes/s", "balloon: guest swap-out"),
    MetricInfo("host_cpu_pct", _HOST, "percent", "host CPU busy (user + kernel) share"),
    MetricInfo("host_iowait_pct", _HOST, "percent", "host CPU iowait share"),
    MetricInfo("host_mem_total_bytes", _HOST, "bytes", "host memory"),
    MetricInfo("host_mem_used_bytes", _HOST, "bytes", "host memory in use"),
    MetricInfo("host_mem_used_pct", _HOST, "percent", "host memory in use, share"),
    MetricInfo("host_storage_total_bytes", _HOST, "bytes", "active storage pools' capacity"),
    MetricInfo("host_storage_used_bytes", _HOST, "bytes", "active storage pools' allocation"),
    MetricInfo("collect_lag_seconds", _COLL, "seconds", "time between cycle start and read end"),
    MetricInfo("collect_errors_total", _COLL, "errors", "failed reads of this host so far"),
    MetricInfo("collect_up", _COLL, "boolean", "1 when the last read of this host worked"),
)

BY_NAME: dict[str, MetricInfo] = {m.name: m for m in METRICS}


def metric_info(name: str) -> MetricInfo:
    from corral.errors import ValidationError

    try:
        return BY_NAME[name]
    except KeyError:
        raise ValidationError(
            f"unknown metric {name!r}; choose one of: {', '.join(sorted(BY_NAME))}."
        ) from None
