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
        left = (state.free[idx] - demand_of(vm)) / np.maximum(state.cap[idx], 1e-9)
        return np.asarray(-np.abs(left[:, VCPU] - left[:, MEM]), dtype=np.float64)
