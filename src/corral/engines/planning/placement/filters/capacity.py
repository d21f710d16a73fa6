"""Room in every resource, with Nova-style allocation (overcommit) ratios applied."""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostFilter
from corral.engines.planning.state import EPS, RESOURCES, BoolArray, ClusterState, demand_of


class CapacityFilter(HostFilter):
    name = "capacity"
    description = (
        "The host has free vCPUs (threads x cpu_allocation_ratio), memory (x ram_allocation_ratio) "
        "and unreserved physical MHz/MiB for the VM's reservations."
    )
    resolvable = True

    def passes(self, state: ClusterState, vm: VM) -> BoolArray:
        return state.fits(vm)

    def passes_when_freed(self, state: ClusterState, vm: VM) -> BoolArray:
        return np.asarray(np.all(demand_of(vm) <= state.cap + EPS, axis=1), dtype=np.bool_)

    def explain(self, state: ClusterState, vm: VM, host: int) -> str:
        need = demand_of(vm)
        free = state.cap[host] - state.used[host]
        short = [
            f"{RESOURCES[r]} needs {need[r]:g}, free {free[r]:g}"
            for r in range(len(RESOURCES))
            if need[r] > free[r] + EPS
        ]
        return "not enough room: " + "; ".join(short)
