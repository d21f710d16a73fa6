"""Members of an anti-affinity group never share a host."""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostFilter
from corral.engines.planning.state import BoolArray, ClusterState


class AntiAffinityFilter(HostFilter):
    name = "anti_affinity"
    description = "No other member of any of the VM's anti-affinity groups runs on the host."
    resolvable = True

    def passes(self, state: ClusterState, vm: VM) -> BoolArray:
        ok = np.ones(state.n_hosts, dtype=np.bool_)
        for g in vm.anti_affinity:
            members = state.anti_affinity.get(g)
            if members is not None:
                ok &= members <= 0
        return ok

    def passes_when_freed(self, state: ClusterState, vm: VM) -> BoolArray:
        return np.ones(state.n_hosts, dtype=np.bool_)

    def explain(self, state: ClusterState, vm: VM, host: int) -> str:
        groups = [g for g in vm.anti_affinity if state.anti_affinity[g][host] > 0]
        return "anti-affinity group already on the host: " + ", ".join(groups)
