"""Prefer hosts whose CPU and memory stay evenly used, so neither is stranded."""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostWeigher
from corral.engines.planning.state import MEM, VCPU, ClusterState, FloatArray, demand_of


class BalanceWeigher(HostWeigher):
    name = "balance"
    description = (
        "Minus the gap between the free vCPU fraction and the free memory fraction after "
        "placement: balanced leftovers can still take ordinary VMs."
    )
    parameters = {"multiplier": "weight, default 1.0"}

    def raw(self, state: ClusterState, vm: VM, hosts: FloatArray) -> FloatArray:
        idx = hosts.astype(np.intp)
        need = demand_of(vm)
        cap_c, cap_m = state.cap[idx, VCPU], state.cap[idx, MEM]
        left_c = (cap_c - state.used[idx, VCPU] - need[VCPU]) / np.maximum(cap_c, 1e-9)
        left_m = (cap_m - state.used[idx, MEM] - need[MEM]) / np.maximum(cap_m, 1e-9)
        return np.asarray(-np.abs(left_c - left_m), dtype=np.float64)
