"""The fleet as a policy sees it at one consolidation step, and the plan it is building.

A policy plans by ``create``/``destroy`` on this copy (CloudSim's policies do the same on
the live hosts and restore them afterwards); the simulator then executes the returned
migrations. Per-host sums of any per-VM quantity can be tracked (``track_sum``) so that a
"what if this VM joined each host" question is one vector operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corral.engines.simulation.model import BoolArray, FloatArray, IntArray
from corral.engines.simulation.power import power_at


@dataclass(frozen=True)
class FleetArrays:
    """Static per-host and per-VM facts of a run."""

    host_capacity: FloatArray
    host_pe_mips: FloatArray
    host_ram: FloatArray
    power_table: FloatArray
    vm_mips: FloatArray
    vm_ram: FloatArray

    @property
    def hosts(self) -> int:
        return len(self.host_capacity)


class PlanningView:
    """Mutable planning state: which VMs each host holds and what they request."""

    def __init__(
        self,
        fleet: FleetArrays,
        lists: list[list[int]],
        requested: FloatArray,
        host_utilization: FloatArray,
        *,
        step: int,
        time: float,
        history: FloatArray,
        history_len: IntArray,
        ram_binding: bool = False,
    ) -> None:
        self.fleet = fleet
        self.lists = [list(vms) for vms in lists]
        self.requested = requested
        self.host_utilization = host_utilization
        self.step = step
        self.time = time
        self.history = history
        self.history_len = history_len
        self.ram_binding = ram_binding
        self.power_now = power_at(fleet.power_table, host_utilization)
        self._sums: dict[str, tuple[FloatArray, FloatArray]] = {}
        self._maxes: dict[str, tuple[FloatArray, FloatArray]] = {}
        self._host_of = np.full(len(requested), -1, dtype=np.int64)
        for h, vms in enumerate(self.lists):
            self._host_of[vms] = h
        self.req_sum = self._host_sum(requested)
        self.capped_sum = self._host_sum(np.minimum(requested, self._pe_of_vm()))
        self.ram_used = self._host_sum(fleet.vm_ram)
        self.count = self._host_sum(np.ones(len(requested)))

    # -- bookkeeping -------------------------------------------------------------------------
    def _pe_of_vm(self) -> FloatArray:
        pe = np.zeros(len(self.requested))
        placed = self._host_of >= 0
        pe[placed] = self.fleet.host_pe_mips[self._host_of[placed]]
        return pe

    def _host_sum(self, per_vm: FloatArray) -> FloatArray:
        placed = self._host_of >= 0
        out: FloatArray = np.zeros((self.fleet.hosts, *per_vm.shape[1:]))
        np.add.at(out, self._host_of[placed], per_vm[placed])
        return out

    def track_sum(self, name: str, per_vm: FloatArray) -> FloatArray:
        """Keep the per-host sum of ``per_vm`` (one value or one row per VM) up to date."""
        sums = self._host_sum(per_vm)
        self._sums[name] = (per_vm, sums)
        return sums

    def track_max(self, name: str, per_vm: FloatArray) -> FloatArray:
        """Keep the per-host maximum of ``per_vm`` (0 for an empty host) up to date."""
        maxes = np.zeros(self.fleet.hosts)
        placed = self._host_of >= 0
        np.maximum.at(maxes, self._host_of[placed], per_vm[placed])
        self._maxes[name] = (per_vm, maxes)
        return maxes

    def host_sum(self, name: str) -> FloatArray:
        return self._sums[name][1]

    def host_max(self, name: str) -> FloatArray:
        return self._maxes[name][1]

    def vm_value(self, name: str) -> FloatArray:
        return self._sums[name][0] if name in self._sums else self._maxes[name][0]

    # -- planning moves ----------------------------------------------------------------------
    def create(self, vm: int, host: int) -> None:
        """Put ``vm`` on ``host`` in the plan (it may stay listed on its source too)."""
        self.lists[host].append(vm)
        self._apply(vm, host, 1.0)
        for per_vm, maxes in self._maxes.values():
            maxes[host] = max(maxes[host], per_vm[vm])

    def destroy(self, vm: int, host: int) -> None:
        """Take ``vm`` off ``host`` in the plan."""
        self.lists[host].remove(vm)
        self._apply(vm, host, -1.0)
        for per_vm, maxes in self._maxes.values():
            vms = self.lists[host]
            maxes[host] = float(per_vm[vms].max()) if vms else 0.0

    def _apply(self, vm: int, host: int, sign: float) -> None:
        r = self.requested[vm]
        self.req_sum[host] += sign * r
        self.capped_sum[host] += sign * min(r, self.fleet.host_pe_mips[host])
        self.ram_used[host] += sign * self.fleet.vm_ram[vm]
        self.count[host] += sign
        for per_vm, sums in self._sums.values():
            sums[host] += sign * per_vm[vm]

    # -- derived -----------------------------------------------------------------------------
    def allocated(self) -> FloatArray:
        """MIPS the hosts' schedulers hand out (capped at capacity when oversubscribed)."""
        out: FloatArray = np.minimum(self.capped_sum, self.fleet.host_capacity)
        return out

    def available(self) -> FloatArray:
        """Unallocated MIPS; zero on an oversubscribed host."""
        free = self.fleet.host_capacity - self.capped_sum
        out: FloatArray = np.where(free > 0, free, 0.0)
        return out

    def suitable(self, vm: int) -> BoolArray:
        """CloudSim's Host.isSuitableForVm: PE size, free MIPS and (at creation) RAM."""
        r = self.requested[vm]
        ok: BoolArray = (self.fleet.host_pe_mips >= r) & (self.available() >= r)
        if self.ram_binding:
            ok &= (self.fleet.host_ram - self.ram_used) >= self.fleet.vm_ram[vm]
            ok &= self.count < 10  # 1 Gbit/s host, 100 Mbit/s per VM
        return ok

    def power_after(self, vm: int, hosts: IntArray) -> FloatArray:
        """Host power if ``vm``'s request were added to each of ``hosts``."""
        after = (self.allocated()[hosts] + self.requested[vm]) / self.fleet.host_capacity[hosts]
        return power_at(self.fleet.power_table, after, hosts)
