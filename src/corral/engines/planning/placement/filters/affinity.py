"""Members of an affinity group share a host (the first member placed chooses it)."""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostFilter
from corral.engines.planning.state import BoolArray, ClusterState


class AffinityFilter(HostFilter):
    name = "affinity"
    description = (
        "If members of the VM's affinity group run on enabled hosts, the host is one holding them."
    )
    resolvable = True

    def passes(self, state: ClusterState, vm: VM) -> BoolArray:
        ok = np.ones(state.n_hosts, dtype=np.bool_)
        for g in vm.affinity:
            members = state.affinity.get(g)
            if members is None:
                continue
            live = (members > 0) & ~state.disabled  # members on failed/drained hosts move too
            if live.any():
                ok &= live
        return ok

    def passes_when_freed(self, state: ClusterState, vm: VM) -> BoolArray:
        return np.ones(state.n_hosts, dtype=np.bool_)

    def explain(self, state: ClusterState, vm: VM, host: int) -> str:
        groups = [g for g in vm.affinity if state.affinity[g][host] <= 0]
        return "affinity group lives on other hosts: " + ", ".join(groups)
