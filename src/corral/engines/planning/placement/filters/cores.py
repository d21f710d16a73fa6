"""A VM never has more vCPUs than the host has hardware threads."""

from __future__ import annotations

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostFilter
from corral.engines.planning.state import BoolArray, ClusterState


class CoresFilter(HostFilter):
    name = "cores"
    description = "The VM's vCPU count is at most the host's threads (cores x threads_per_core)."

    def passes(self, state: ClusterState, vm: VM) -> BoolArray:
        return state.threads >= vm.vcpus

    def explain(self, state: ClusterState, vm: VM, host: int) -> str:
        return f"VM has {vm.vcpus} vCPUs, the host only {int(state.threads[host])} threads"
