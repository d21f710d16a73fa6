"""vSphere's percentage-of-cluster-resources policy.

Current failover capacity = (total host capacity - powered-on reservations) /
total, for CPU and memory. A VM without a CPU reservation counts the 32 MHz
default (vSphere 5+), without a memory reservation 0 MiB plus any declared
overhead. The configured percentages default to the share of the K largest
hosts (what vSphere 6.5+ derives from "host failures cluster tolerates").
``tolerated_host_failures`` removes the largest hosts one by one while the
rest still covers the reservations.
"""

from __future__ import annotations

from corral.engines.planning.ha.base import AdmissionPolicy, HAReport, powered_on
from corral.engines.planning.ha.slots import DEFAULT_CPU_SLOT_MHZ
from corral.engines.planning.model import Fleet


def _tolerated(capacities: list[int], used: float) -> int:
    ranked = sorted(capacities, reverse=True)
    k = 0
    while k < len(ranked) - 1 and sum(ranked[k + 1 :]) >= used:
        k += 1
    return k if sum(ranked) >= used else 0


def _pct(total: float, used: float) -> float:
    return round(100.0 * (total - used) / total, 2) if total else 0.0


class PercentagePolicy(AdmissionPolicy):
    name = "percentage"
    description = "vSphere percentage policy: keep a share of cluster CPU and memory free."
    parameters = {
        "cpu_pct": "configured CPU failover percentage, default: share of the K largest hosts",
        "memory_pct": "configured memory failover percentage, default: as cpu_pct",
    }

    def __init__(self, cpu_pct: float | None = None, memory_pct: float | None = None) -> None:
        self.cpu_pct = cpu_pct
        self.memory_pct = memory_pct

    def evaluate(self, fleet: Fleet, failures: int, demand_scale: float = 1.0) -> HAReport:
        vms = powered_on(fleet)
        cpu_caps = [h.cpu_capacity_mhz for h in fleet.hosts]
        mem_caps = [h.memory_mib for h in fleet.hosts]
        used_cpu = demand_scale * sum(max(v.cpu_reservation_mhz, DEFAULT_CPU_SLOT_MHZ) for v in vms)
        used_mem = demand_scale * sum(
            v.memory_reservation_mib + (v.memory_overhead_mib or 0) for v in vms
        )
        cpu_now, mem_now = _pct(sum(cpu_caps), used_cpu), _pct(sum(mem_caps), used_mem)
        cpu_cfg = self.cpu_pct if self.cpu_pct is not None else self._k_share(cpu_caps, failures)
        mem_cfg = (
            self.memory_pct if self.memory_pct is not None else self._k_share(mem_caps, failures)
        )
        tolerated = min(_tolerated(cpu_caps, used_cpu), _tolerated(mem_caps, used_mem))
        details = {
            "cpu_failover_capacity_pct": cpu_now,
            "memory_failover_capacity_pct": mem_now,
            "configured_cpu_failover_pct": cpu_cfg,
            "configured_memory_failover_pct": mem_cfg,
            "meets_configured_pct": cpu_now >= cpu_cfg and mem_now >= mem_cfg,
            "total_cpu_mhz": sum(cpu_caps),
            "reserved_cpu_mhz": round(used_cpu, 1),
            "total_memory_mib": sum(mem_caps),
            "reserved_memory_mib": round(used_mem, 1),
        }
        return HAReport(self.name, failures, tolerated, details)

    @staticmethod
    def _k_share(caps: list[int], k: int) -> float:
        total = sum(caps)
        return round(100.0 * sum(sorted(caps, reverse=True)[:k]) / total, 2) if total else 0.0
