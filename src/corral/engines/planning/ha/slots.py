"""vSphere's slot policy ("host failures cluster tolerates").

Semantics as vSphere documents them (vSphere Availability guide; the
``ClusterDasFailoverLevelAdvancedRuntimeInfo.SlotInfo`` API): the slot is the
largest CPU reservation and the largest memory reservation (plus memory
overhead) among powered-on VMs, never below ``das.vmcpuminmhz`` = 32 MHz
(vSphere 5+) for CPU; with no memory reservation anywhere the memory slot is
the largest memory overhead. Slots per host = min(CPU slots, memory slots);
the hosts with the most slots fail first; the cluster tolerates k failures while
the remaining slots still hold every powered-on VM. Optional slot caps
(``das.slotCpuInMHz`` / ``das.slotMemInMB``) make large VMs take several slots.
"""

from __future__ import annotations

import math

from corral.engines.planning.ha.base import AdmissionPolicy, HAReport, powered_on
from corral.engines.planning.model import VM, Fleet

#: das.vmcpuminmhz default since vSphere 5.0 (256 MHz before).
DEFAULT_CPU_SLOT_MHZ = 32


def estimated_overhead_mib(vm: VM) -> float:
    """A VM's memory overhead: its declared value, else a linear fit of VMware's published table.

    The table (Resource Management guide, "Overhead Memory on Virtual Machines")
    runs from about 20 MB (1 vCPU, 256 MB) to about 140 MB (1 vCPU, 16 GB); the
    fit 16 + 4 x vCPUs + 0.0075 x memory is within about 10 % of it.
    """
    if vm.memory_overhead_mib is not None:
        return float(vm.memory_overhead_mib)
    return 16.0 + 4.0 * vm.vcpus + 0.0075 * vm.memory_mib


def slot_size(vms: list[VM]) -> tuple[int, int]:
    """(cpu_mhz, memory_mib) of the slot for these powered-on VMs."""
    cpu = max([DEFAULT_CPU_SLOT_MHZ, *(v.cpu_reservation_mhz for v in vms)])
    mem = max([0, *(v.memory_reservation_mib + (v.memory_overhead_mib or 0) for v in vms)])
    if mem == 0:
        mem = math.ceil(max([1.0, *(estimated_overhead_mib(v) for v in vms)]))
    return cpu, mem


class SlotPolicy(AdmissionPolicy):
    name = "slots"
    description = "vSphere slot policy: uniform slots sized by the largest reservations."
    parameters = {
        "max_slot_cpu_mhz": "cap on the CPU slot (das.slotCpuInMHz), default none",
        "max_slot_memory_mib": "cap on the memory slot (das.slotMemInMB), default none",
    }

    def __init__(
        self, max_slot_cpu_mhz: int | None = None, max_slot_memory_mib: int | None = None
    ) -> None:
        self.max_cpu = max_slot_cpu_mhz
        self.max_mem = max_slot_memory_mib

    def evaluate(self, fleet: Fleet, failures: int, demand_scale: float = 1.0) -> HAReport:
        vms = powered_on(fleet)
        cpu, mem = slot_size(vms)
        cpu = min(cpu, self.max_cpu) if self.max_cpu else cpu
        mem = min(mem, self.max_mem) if self.max_mem else mem
        per_host = {
            h.name: min(h.cpu_capacity_mhz // cpu, h.memory_mib // mem) for h in fleet.hosts
        }
        used = math.ceil(sum(self._slots_of(v, cpu, mem) for v in vms) * demand_scale - 1e-9)
        ranked = sorted(per_host.values(), reverse=True)
        tolerated = 0
        while tolerated < len(ranked) - 1 and sum(ranked[tolerated + 1 :]) >= used:
            tolerated += 1
        if sum(ranked) < used:
            tolerated = -1  # not even the healthy cluster holds every VM
        reserved = sum(ranked[:failures])
        details = {
            "slot": {"cpu_mhz": cpu, "memory_mib": mem},
            "slots_per_host": per_host,
            "total_slots": sum(ranked),
            "used_slots": used,
            "failover_slots": reserved,
            "available_slots": max(sum(ranked) - used - reserved, 0),
        }
        return HAReport(self.name, failures, max(tolerated, 0), details)

    @staticmethod
    def _slots_of(vm: VM, cpu: int, mem: int) -> int:
        need_mem = vm.memory_reservation_mib + (vm.memory_overhead_mib or 0)
        return max(1, math.ceil(vm.cpu_reservation_mhz / cpu), math.ceil(need_mem / mem))
