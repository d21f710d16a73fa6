"""Spread (multiplier > 0) or stack (multiplier < 0) by the room left after placing."""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostWeigher
from corral.engines.planning.state import MEM, VCPU, ClusterState, FloatArray, demand_of


class FreeCapacityWeigher(HostWeigher):
    name = "free_capacity"
    description = (
        "Mean fraction of vCPUs and memory left free after placing the VM; a positive multiplier "
        "spreads VMs, a negative one stacks them (fewer active hosts)."
    )
    parameters = {"multiplier": "weight and direction, default 1.0 (spread)"}

    def raw(self, state: ClusterState, vm: VM, hosts: FloatArray) -> FloatArray:
        idx = hosts.astype(np.intp)
        need = demand_of(vm)
        total = np.zeros(idx.size)
        for r in (VCPU, MEM):
            cap = state.cap[idx, r]
            total += (cap - state.used[idx, r] - need[r]) / np.maximum(cap, 1e-9)
        return total / 2.0
